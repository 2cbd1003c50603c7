# A Catalyst Sovereign on Hetzner Cloud: private network, firewall, SSH key, k3s control plane
# (1 or 3 nodes), workers, and a load balancer in front of the ingress node ports.
# DNS is not managed here (the pool-domain manager owns it). Cloud-init on the first
# control-plane node installs k3s, Cilium and Flux; Flux takes over from there.

provider "hcloud" {
  token = var.hcloud_token
}

locals {
  name_prefix = "catalyst-${replace(var.sovereign_fqdn, ".", "-")}"

  # Every resource carries these, so a Sovereign's resources can be found (and purged) by label.
  labels = {
    "catalyst.openova.io/sovereign"  = var.sovereign_fqdn
    "catalyst.openova.io/deployment" = var.deployment_id
  }

  network_zone = {
    fsn1 = "eu-central"
    nbg1 = "eu-central"
    hel1 = "eu-central"
    ash  = "us-east"
    hil  = "us-west"
  }[var.region]

  k3s_token = random_password.k3s_token.result
}

resource "random_password" "k3s_token" {
  length  = 48
  special = false
}

resource "hcloud_network" "main" {
  name     = "${local.name_prefix}-net"
  ip_range = "10.0.0.0/16"
  labels   = local.labels
}

resource "hcloud_network_subnet" "nodes" {
  network_id   = hcloud_network.main.id
  type         = "cloud"
  network_zone = local.network_zone
  ip_range     = local.node_subnet
}

resource "hcloud_firewall" "main" {
  name   = "${local.name_prefix}-fw"
  labels = local.labels

  dynamic "rule" {
    for_each = { http = "80", https = "443", kubernetes-api = "6443" }
    content {
      description = rule.key
      direction   = "in"
      protocol    = "tcp"
      port        = rule.value
      source_ips  = ["0.0.0.0/0", "::/0"]
    }
  }

  rule {
    description = "icmp"
    direction   = "in"
    protocol    = "icmp"
    source_ips  = ["0.0.0.0/0", "::/0"]
  }

  # SSH only from the listed networks; no rule at all when the list is empty.
  dynamic "rule" {
    for_each = length(var.ssh_allowed_cidrs) > 0 ? [var.ssh_allowed_cidrs] : []
    content {
      description = "ssh"
      direction   = "in"
      protocol    = "tcp"
      port        = "22"
      source_ips  = rule.value
    }
  }
}

resource "hcloud_ssh_key" "admin" {
  name       = "${local.name_prefix}-admin"
  public_key = var.ssh_public_key
  labels     = local.labels
}

resource "hcloud_server" "control_plane" {
  count = local.control_plane_count

  name         = "${local.name_prefix}-cp${count.index + 1}"
  server_type  = var.control_plane_size
  image        = "ubuntu-24.04"
  location     = var.region
  ssh_keys     = [hcloud_ssh_key.admin.id]
  firewall_ids = [hcloud_firewall.main.id]
  labels       = merge(local.labels, { "catalyst.openova.io/role" = "control-plane" })
  user_data    = templatefile("${path.module}/cloudinit-control-plane.tftpl", local.control_plane_cloudinit[count.index])

  public_net {
    ipv4_enabled = true
    ipv6_enabled = true
  }

  network {
    network_id = hcloud_network.main.id
    ip         = local.control_plane_cloudinit[count.index].node_private_ip
  }

  depends_on = [hcloud_network_subnet.nodes]

  lifecycle {
    # Cloud-init runs once; a changed template must not replace a running node on re-apply.
    ignore_changes = [user_data]
  }
}

resource "hcloud_server" "worker" {
  count = var.worker_count

  name         = "${local.name_prefix}-w${count.index + 1}"
  server_type  = var.worker_size
  image        = "ubuntu-24.04"
  location     = var.region
  ssh_keys     = [hcloud_ssh_key.admin.id]
  firewall_ids = [hcloud_firewall.main.id]
  labels       = merge(local.labels, { "catalyst.openova.io/role" = "worker" })
  user_data    = templatefile("${path.module}/cloudinit-worker.tftpl", local.worker_cloudinit[count.index])

  public_net {
    ipv4_enabled = true
    ipv6_enabled = true
  }

  network {
    network_id = hcloud_network.main.id
    ip         = local.worker_cloudinit[count.index].node_private_ip
  }

  depends_on = [hcloud_network_subnet.nodes]

  lifecycle {
    ignore_changes = [user_data]
  }
}

resource "hcloud_load_balancer" "main" {
  name               = "${local.name_prefix}-lb"
  load_balancer_type = "lb11"
  location           = var.region
  labels             = local.labels

  algorithm {
    type = "round_robin"
  }
}

resource "hcloud_load_balancer_network" "main" {
  load_balancer_id = hcloud_load_balancer.main.id
  network_id       = hcloud_network.main.id

  depends_on = [hcloud_network_subnet.nodes]
}

resource "hcloud_load_balancer_target" "control_plane" {
  count = local.control_plane_count

  type             = "server"
  load_balancer_id = hcloud_load_balancer.main.id
  server_id        = hcloud_server.control_plane[count.index].id
  use_private_ip   = true

  depends_on = [hcloud_load_balancer_network.main]
}

# Ingress is exposed by node ports on the cluster; the load balancer forwards plain TCP to them.
resource "hcloud_load_balancer_service" "ingress" {
  for_each = { http = [80, 31080], https = [443, 31443] }

  load_balancer_id = hcloud_load_balancer.main.id
  protocol         = "tcp"
  listen_port      = each.value[0]
  destination_port = each.value[1]
}
