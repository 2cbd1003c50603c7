output "control_plane_ip" {
  description = "Public IPv4 address of the first control-plane node."
  value       = hcloud_server.control_plane[0].ipv4_address
}

output "load_balancer_ip" {
  description = "Public IPv4 address of the load balancer."
  value       = hcloud_load_balancer.main.ipv4
}

output "sovereign_fqdn" {
  description = "FQDN of the Sovereign."
  value       = var.sovereign_fqdn
}

output "console_url" {
  description = "URL of the Sovereign's web console."
  value       = "https://console.${var.sovereign_fqdn}"
}

output "gitops_repo_url" {
  description = "Git repository Flux reconciles the Sovereign from."
  value       = var.gitops_repo_url
}
