# Inputs of the Hetzner Sovereign configuration.
#
# Catalyst writes every variable below into tofu.auto.tfvars.json, except `hcloud_token`: the
# token reaches OpenTofu only through the TF_VAR_hcloud_token environment variable of the tofu
# process, so it is never written to a file by Catalyst.

variable "hcloud_token" {
  description = "Hetzner Cloud API token (read/write). Supply it as TF_VAR_hcloud_token; never put it in a tfvars file."
  type        = string
  sensitive   = true
  nullable    = false

  validation {
    condition     = length(trimspace(var.hcloud_token)) > 0
    error_message = "hcloud_token is empty: export TF_VAR_hcloud_token with a Hetzner Cloud API token."
  }
}

variable "deployment_id" {
  description = "Catalyst deployment id (16 lowercase hex characters); labels every resource."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{16}$", var.deployment_id))
    error_message = "deployment_id must be 16 lowercase hex characters."
  }
}

variable "sovereign_fqdn" {
  description = "FQDN of the Sovereign, e.g. omantel.omani.works."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*(\\.[a-z][a-z0-9-]*)+$", var.sovereign_fqdn))
    error_message = "sovereign_fqdn must be two or more DNS labels of a-z, 0-9 and hyphens, each starting with a letter."
  }

  # The FQDN is used verbatim as a Hetzner label value, which allows at most 63 characters.
  validation {
    condition     = length(var.sovereign_fqdn) <= 63
    error_message = "sovereign_fqdn must be at most 63 characters (it labels every Hetzner resource)."
  }
}

variable "sovereign_subdomain" {
  description = "Pool subdomain label (pool domain mode); empty otherwise."
  type        = string
  default     = ""
}

variable "org_name" {
  description = "Display name of the organisation that owns the Sovereign."
  type        = string

  validation {
    condition     = length(trimspace(var.org_name)) > 0 && length(var.org_name) <= 128
    error_message = "org_name must be 1 to 128 characters."
  }
}

variable "org_email" {
  description = "Email of the initial sovereign-admin."
  type        = string

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.org_email))
    error_message = "org_email must be an email address."
  }
}

variable "hcloud_project_id" {
  description = "Hetzner Cloud project id the token belongs to; recorded on the nodes for reference."
  type        = string
}

variable "region" {
  description = "Hetzner location of the primary region."
  type        = string

  validation {
    condition     = contains(["fsn1", "nbg1", "hel1", "ash", "hil"], var.region)
    error_message = "region must be one of fsn1, nbg1, hel1, ash, hil."
  }
}

variable "control_plane_size" {
  description = "Hetzner server type of the control-plane nodes."
  type        = string
  default     = "cpx32"

  validation {
    condition     = can(regex("^(cx|cpx|ccx|cax)[0-9]+$", var.control_plane_size))
    error_message = "control_plane_size must be a Hetzner server type such as cpx32."
  }
}

variable "worker_size" {
  description = "Hetzner server type of the worker nodes; empty when there are none."
  type        = string
  default     = "cpx32"

  validation {
    condition     = var.worker_size == "" || can(regex("^(cx|cpx|ccx|cax)[0-9]+$", var.worker_size))
    error_message = "worker_size must be empty or a Hetzner server type such as cpx32."
  }
}

variable "worker_count" {
  description = "Number of worker nodes in the primary region."
  type        = number
  default     = 0

  validation {
    condition     = var.worker_count >= 0 && var.worker_count <= 50 && floor(var.worker_count) == var.worker_count
    error_message = "worker_count must be a whole number between 0 and 50."
  }
}

variable "ha_enabled" {
  description = "Run three control-plane nodes (embedded etcd) instead of one."
  type        = bool
  default     = false
}

variable "regions" {
  description = "Every region of the request, primary first. Only the primary is built by this configuration."
  type = list(object({
    provider           = string
    cloud_region       = string
    control_plane_size = string
    worker_size        = string
    worker_count       = number
  }))
  default  = []
  nullable = false

  validation {
    condition     = alltrue([for r in var.regions : contains(["hetzner", "huawei", "oci", "aws", "azure"], r.provider)])
    error_message = "regions[*].provider must be one of hetzner, huawei, oci, aws, azure."
  }
}

variable "ssh_public_key" {
  description = "OpenSSH public key of the sovereign-admin (break-glass root access)."
  type        = string

  validation {
    condition     = can(regex("^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256) [A-Za-z0-9+/=]+( .*)?$", var.ssh_public_key))
    error_message = "ssh_public_key must be one ssh-ed25519, ssh-rsa or ecdsa-sha2-nistp256 authorized_keys line."
  }
}

variable "domain_mode" {
  description = "How the Sovereign's domain is managed: pool, byo-manual or byo-api."
  type        = string
  default     = "pool"

  validation {
    condition     = contains(["pool", "byo-manual", "byo-api"], var.domain_mode)
    error_message = "domain_mode must be pool, byo-manual or byo-api."
  }
}

variable "pool_domain" {
  description = "Pool apex domain (pool domain mode); empty otherwise."
  type        = string
  default     = ""
}

variable "gitops_repo_url" {
  description = "HTTPS URL of the Git repository Flux reconciles the Sovereign from."
  type        = string
  default     = "https://github.com/openova-io/openova"

  validation {
    condition     = can(regex("^https://[A-Za-z0-9._~:/?#@!&()*+,;=%-]+$", var.gitops_repo_url))
    error_message = "gitops_repo_url must be an https:// URL without spaces or quotes."
  }
}

variable "gitops_branch" {
  description = "Branch of gitops_repo_url that Flux follows."
  type        = string
  default     = "main"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]+$", var.gitops_branch))
    error_message = "gitops_branch must be a plain branch name."
  }
}

variable "gitops_path" {
  description = "Folder of gitops_repo_url that Flux applies: the Sovereign's bootstrap tree, ./clusters/<sovereign_fqdn>."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^(\\./[A-Za-z0-9._/-]+)?$", var.gitops_path))
    error_message = "gitops_path must be a relative folder such as ./clusters/omantel.omani.works."
  }
}

variable "gitops_token" {
  description = "Read token of gitops_repo_url (Catalyst's per-deployment token). Supply it as TF_VAR_gitops_token; never put it in a tfvars file."
  type        = string
  default     = ""
  sensitive   = true
}

variable "k3s_version" {
  description = "k3s release installed on every node."
  type        = string
  default     = "v1.31.4+k3s1"

  validation {
    condition     = can(regex("^v[0-9]+\\.[0-9]+\\.[0-9]+\\+k3s[0-9]+$", var.k3s_version))
    error_message = "k3s_version must look like v1.31.4+k3s1."
  }
}

variable "ssh_allowed_cidrs" {
  description = "Source networks allowed to reach SSH (port 22). Empty closes SSH on the public interface."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for c in var.ssh_allowed_cidrs : can(cidrhost(c, 0))])
    error_message = "ssh_allowed_cidrs must contain CIDR blocks such as 203.0.113.0/24."
  }
}
