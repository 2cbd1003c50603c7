//! The provider catalog: providers, their regions and node sizes. One place, shared by the API's
//! validation and the web console's wizard.

/// A node size (SKU).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeSize {
    /// Provider's SKU id.
    pub id: &'static str,
    /// Virtual CPUs.
    pub vcpu: u32,
    /// Memory in GB.
    pub ram_gb: u32,
    /// Price in EUR per hour, when known.
    pub eur_per_hour: Option<f64>,
    /// The size the wizard pre-selects.
    pub recommended: bool,
}

/// A provider region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Provider's region code.
    pub code: &'static str,
    /// Human name.
    pub name: &'static str,
}

/// A cloud provider.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Provider {
    /// Code used in requests (`hetzner`).
    pub code: &'static str,
    /// Display name.
    pub name: &'static str,
    /// True when Catalyst ships an OpenTofu module that can provision it.
    pub provisionable: bool,
    /// Regions.
    pub regions: &'static [Region],
    /// Node sizes.
    pub sizes: &'static [NodeSize],
}

impl Provider {
    /// Looks a region up by code.
    pub fn region(&self, code: &str) -> Option<&'static Region> {
        self.regions.iter().find(|r| r.code == code)
    }

    /// Looks a size up by id.
    pub fn size(&self, id: &str) -> Option<&'static NodeSize> {
        self.sizes.iter().find(|s| s.id == id)
    }

    /// The recommended size.
    pub fn recommended_size(&self) -> &'static NodeSize {
        self.sizes
            .iter()
            .find(|s| s.recommended)
            .unwrap_or(&self.sizes[0])
    }
}

const fn s(id: &'static str, vcpu: u32, ram_gb: u32, eur: f64, recommended: bool) -> NodeSize {
    NodeSize {
        id,
        vcpu,
        ram_gb,
        eur_per_hour: if eur > 0.0 { Some(eur) } else { None },
        recommended,
    }
}

const fn r(code: &'static str, name: &'static str) -> Region {
    Region { code, name }
}

/// Every provider the wizard offers.
pub static PROVIDERS: &[Provider] = &[
    Provider {
        code: "hetzner",
        name: "Hetzner Cloud",
        provisionable: true,
        regions: &[
            r("fsn1", "Falkenstein"),
            r("nbg1", "Nuremberg"),
            r("hel1", "Helsinki"),
            r("ash", "Ashburn"),
            r("hil", "Hillsboro"),
        ],
        sizes: &[
            s("cx23", 2, 4, 0.0064, false),
            s("cx33", 4, 8, 0.0104, false),
            s("cx43", 8, 16, 0.0192, false),
            s("cx53", 16, 32, 0.0360, false),
            s("cpx22", 2, 4, 0.0128, false),
            s("cpx32", 4, 8, 0.0232, true),
            s("cpx42", 8, 16, 0.0408, false),
            s("cpx52", 12, 24, 0.0585, false),
            s("cpx62", 16, 32, 0.0809, false),
            s("cax11", 2, 4, 0.0072, false),
            s("cax21", 4, 8, 0.0128, false),
            s("cax31", 8, 16, 0.0256, false),
            s("cax41", 16, 32, 0.0505, false),
            s("ccx13", 2, 8, 0.0256, false),
            s("ccx23", 4, 16, 0.0505, false),
            s("ccx33", 8, 32, 0.1001, false),
            s("ccx43", 16, 64, 0.2003, false),
            s("ccx53", 32, 128, 0.4006, false),
            s("ccx63", 48, 192, 0.6001, false),
        ],
    },
    Provider {
        code: "huawei",
        name: "Huawei Cloud",
        provisionable: false,
        regions: &[
            r("eu-west-101", "Dublin"),
            r("eu-west-204", "Paris"),
            r("cn-north-4", "Beijing"),
            r("ap-southeast-1", "Hong Kong"),
            r("me-east-1", "Riyadh"),
        ],
        sizes: &[
            s("s7.large.2", 2, 4, 0.0, false),
            s("s7.xlarge.2", 4, 8, 0.0, false),
            s("s7.2xlarge.2", 8, 16, 0.0, false),
            s("s7.4xlarge.2", 16, 32, 0.0, false),
            s("c7n.large.2", 2, 4, 0.0, false),
            s("c7n.xlarge.2", 4, 8, 0.0, true),
            s("c7n.2xlarge.2", 8, 16, 0.0, false),
            s("c7n.4xlarge.2", 16, 32, 0.0, false),
            s("m7.large.8", 2, 16, 0.0, false),
            s("m7.xlarge.8", 4, 32, 0.0, false),
            s("m7.2xlarge.8", 8, 64, 0.0, false),
        ],
    },
    Provider {
        code: "oci",
        name: "Oracle Cloud (OCI)",
        provisionable: false,
        regions: &[
            r("eu-frankfurt-1", "Frankfurt"),
            r("eu-amsterdam-1", "Amsterdam"),
            r("us-ashburn-1", "Ashburn"),
            r("us-phoenix-1", "Phoenix"),
            r("ap-singapore-1", "Singapore"),
        ],
        sizes: &[
            s("VM.Standard.E5.Flex.1.8", 1, 8, 0.0, false),
            s("VM.Standard.E5.Flex.2.16", 2, 16, 0.0, true),
            s("VM.Standard.E5.Flex.4.32", 4, 32, 0.0, false),
            s("VM.Standard.E5.Flex.8.64", 8, 64, 0.0, false),
            s("VM.Standard.E4.Flex.2.16", 2, 16, 0.0, false),
            s("VM.Standard.E4.Flex.4.32", 4, 32, 0.0, false),
            s("VM.Standard3.Flex.2.16", 2, 16, 0.0, false),
            s("VM.Standard3.Flex.4.32", 4, 32, 0.0, false),
            s("VM.Standard.A1.Flex.2.12", 2, 12, 0.0, false),
            s("VM.Standard.A1.Flex.4.24", 4, 24, 0.0, false),
            s("VM.Standard.A1.Flex.8.48", 8, 48, 0.0, false),
        ],
    },
    Provider {
        code: "aws",
        name: "Amazon Web Services",
        provisionable: false,
        regions: &[
            r("eu-central-1", "Frankfurt"),
            r("eu-west-1", "Ireland"),
            r("us-east-1", "N. Virginia"),
            r("us-west-2", "Oregon"),
            r("ap-southeast-1", "Singapore"),
        ],
        sizes: &[
            s("m6i.large", 2, 8, 0.0, false),
            s("m6i.xlarge", 4, 16, 0.0, true),
            s("m6i.2xlarge", 8, 32, 0.0, false),
            s("m6i.4xlarge", 16, 64, 0.0, false),
            s("c6i.large", 2, 4, 0.0, false),
            s("c6i.xlarge", 4, 8, 0.0, false),
            s("c6i.2xlarge", 8, 16, 0.0, false),
            s("c6i.4xlarge", 16, 32, 0.0, false),
            s("r6i.large", 2, 16, 0.0, false),
            s("r6i.xlarge", 4, 32, 0.0, false),
            s("r6i.2xlarge", 8, 64, 0.0, false),
            s("m7g.large", 2, 8, 0.0, false),
            s("m7g.xlarge", 4, 16, 0.0, false),
            s("m7g.2xlarge", 8, 32, 0.0, false),
            s("m7g.4xlarge", 16, 64, 0.0, false),
        ],
    },
    Provider {
        code: "azure",
        name: "Microsoft Azure",
        provisionable: false,
        regions: &[
            r("westeurope", "West Europe"),
            r("northeurope", "North Europe"),
            r("eastus", "East US"),
            r("westus2", "West US 2"),
            r("southeastasia", "Southeast Asia"),
        ],
        sizes: &[
            s("Standard_D2s_v5", 2, 8, 0.0, false),
            s("Standard_D4s_v5", 4, 16, 0.0, true),
            s("Standard_D8s_v5", 8, 32, 0.0, false),
            s("Standard_D16s_v5", 16, 64, 0.0, false),
            s("Standard_E2s_v5", 2, 16, 0.0, false),
            s("Standard_E4s_v5", 4, 32, 0.0, false),
            s("Standard_E8s_v5", 8, 64, 0.0, false),
            s("Standard_D2ps_v5", 2, 8, 0.0, false),
            s("Standard_D4ps_v5", 4, 16, 0.0, false),
            s("Standard_D8ps_v5", 8, 32, 0.0, false),
        ],
    },
];

/// Looks a provider up by code.
pub fn provider(code: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_has_one_recommended_size_and_unique_codes() {
        for p in PROVIDERS {
            assert_eq!(
                p.sizes.iter().filter(|s| s.recommended).count(),
                1,
                "{}",
                p.code
            );
            for (i, r) in p.regions.iter().enumerate() {
                assert!(!p.regions[i + 1..].iter().any(|o| o.code == r.code));
            }
        }
        assert_eq!(provider("hetzner").unwrap().recommended_size().id, "cpx32");
    }
}
