//! `POST /api/v1/deployments` up to the service: the body decoded as the handler does
//! (`catalyst-api` wire.rs `CreateDeploymentRequest`), converted, and validated by
//! `catalyst_core::DeploymentInput::validate`. An accepted spec must keep what the rest of the
//! system relies on, and survive the JSON round trip it takes into storage.
#![no_main]

use axum::body::Bytes;
use catalyst_api::fuzzing::create_deployment;
use catalyst_core::{DeploymentSpec, DomainMode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pools = ["omani.works".to_string(), "openova.io".to_string()];
    let body = Bytes::copy_from_slice(data);
    let Ok((spec, token)) = create_deployment(&body, &pools) else {
        return;
    };
    assert!(!spec.regions.is_empty(), "a spec without a region");
    let _ = spec.primary();
    assert!(
        !token.expose().is_empty(),
        "an accepted request without a token"
    );
    assert_eq!(
        spec.sovereign_fqdn,
        spec.sovereign_fqdn.to_ascii_lowercase()
    );
    if spec.domain_mode == DomainMode::Pool {
        let (pool, label) = (
            spec.pool_domain
                .as_deref()
                .expect("pool mode names its pool"),
            spec.subdomain
                .as_deref()
                .expect("pool mode names its label"),
        );
        assert!(
            pools.iter().any(|p| p == pool),
            "{pool} is not a managed pool"
        );
        assert_eq!(spec.sovereign_fqdn, format!("{label}.{pool}"));
    }
    let stored = serde_json::to_vec(&spec).expect("a spec serializes");
    let back: DeploymentSpec = serde_json::from_slice(&stored).expect("a stored spec reads back");
    assert_eq!(back, spec);
});
