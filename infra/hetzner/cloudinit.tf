# What the cloud-init templates are rendered with.
#
# The templates use only plain ${name} interpolations (no directives, no function calls), and
# every value they receive is computed here from variables alone. Catalyst's dry-run provisioner
# mirrors these maps to render the same user data without running OpenTofu; keep the two in step
# (crates/catalyst-provision/src/render.rs).
locals {
  node_subnet            = "10.0.1.0/24"
  control_plane_count    = var.ha_enabled ? 3 : 1
  first_control_plane_ip = cidrhost(local.node_subnet, 2)

  # Control-plane node i gets 10.0.1.(2+i); worker i gets 10.0.1.(10+i).
  control_plane_cloudinit = [
    for i in range(local.control_plane_count) : {
      deployment_id       = var.deployment_id
      sovereign_fqdn      = var.sovereign_fqdn
      sovereign_subdomain = var.sovereign_subdomain
      org_name_json       = jsonencode(var.org_name)
      org_email_json      = jsonencode(var.org_email)
      project_id_json     = jsonencode(var.hcloud_project_id)
      region              = var.region
      ha_enabled          = var.ha_enabled
      worker_count        = var.worker_count
      k3s_version         = var.k3s_version
      k3s_token           = local.k3s_token
      gitops_repo_url     = var.gitops_repo_url
      gitops_branch       = var.gitops_branch
      gitops_path         = var.gitops_path != "" ? var.gitops_path : "./clusters/${var.sovereign_fqdn}"
      gitops_token        = var.gitops_token
      node_private_ip     = cidrhost(local.node_subnet, 2 + i)
      api_server_ip       = local.first_control_plane_ip
      # The first node initialises embedded etcd; the others join it.
      k3s_cluster = i == 0 ? "cluster-init: true" : "server: \"https://${local.first_control_plane_ip}:6443\""
      # Only the first node installs Cilium and Flux.
      bootstrap_flux = i == 0 ? "true" : "false"
    }
  ]

  worker_cloudinit = [
    for i in range(var.worker_count) : {
      deployment_id   = var.deployment_id
      sovereign_fqdn  = var.sovereign_fqdn
      k3s_version     = var.k3s_version
      k3s_token       = local.k3s_token
      node_private_ip = cidrhost(local.node_subnet, 10 + i)
      api_server_ip   = local.first_control_plane_ip
    }
  ]
}
