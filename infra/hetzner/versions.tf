# Versions this configuration is written and tested against.
terraform {
  required_version = ">= 1.6.0"

  required_providers {
    hcloud = {
      source  = "hetznercloud/hcloud"
      version = "~> 1.49"
    }
    # Generates the k3s join token. A token derived from the project id and FQDN (as upstream
    # did) can be recomputed by anyone who knows both, and the API port is public.
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}
