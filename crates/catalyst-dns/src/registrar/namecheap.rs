//! Namecheap XML API: every call a GET with `ApiUser`, `ApiKey`, `UserName`, `ClientIp` and
//! `Command`; the `ApiResponse` envelope says OK or carries numbered errors.
use async_trait::async_trait;
use reqwest::header::ACCEPT;

use super::{common_status, require_ns, transport, RegResult, Registrar, RegistrarError};

/// Production base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.namecheap.com/xml.response";
/// Sandbox base URL.
pub const SANDBOX_BASE_URL: &str = "https://api.sandbox.namecheap.com/xml.response";

/// The Namecheap adapter.
#[derive(Debug, Clone)]
pub struct Namecheap {
    base: String,
    http: reqwest::Client,
}

/// Parsed credentials.
#[derive(Debug, PartialEq, Eq)]
struct Creds<'a> {
    api_user: &'a str,
    api_key: &'a str,
    user_name: &'a str,
    client_ip: &'a str,
}

fn parse_token(token: &str) -> RegResult<Creds<'_>> {
    let p: Vec<&str> = token.trim().split(':').map(str::trim).collect();
    let c = match p[..] {
        [u, k, n, ip] => Creds {
            api_user: u,
            api_key: k,
            user_name: n,
            client_ip: ip,
        },
        [u, k, ip] => Creds {
            api_user: u,
            api_key: k,
            user_name: u,
            client_ip: ip,
        },
        [u, k] => Creds {
            api_user: u,
            api_key: k,
            user_name: u,
            client_ip: "127.0.0.1",
        },
        _ => return Err(RegistrarError::InvalidToken),
    };
    if c.api_user.is_empty() || c.api_key.is_empty() {
        return Err(RegistrarError::InvalidToken);
    }
    Ok(c)
}

/// `acme.co.uk` → (`acme`, `co.uk`).
pub fn split_domain(domain: &str) -> RegResult<(String, String)> {
    let d = domain.trim().to_ascii_lowercase();
    match d.split_once('.') {
        Some((sld, tld)) if !sld.is_empty() && !tld.is_empty() && !tld.ends_with('.') => {
            Ok((sld.to_owned(), tld.to_owned()))
        }
        _ => Err(RegistrarError::Other(format!(
            "namecheap: invalid domain {d:?}"
        ))),
    }
}

fn envelope_error(doc: &roxmltree::Document<'_>) -> Option<RegistrarError> {
    let root = doc.root_element();
    let ok = root
        .attribute("Status")
        .is_some_and(|s| s.eq_ignore_ascii_case("OK"));
    let first = root.descendants().find(|n| n.tag_name().name() == "Error");
    if ok && first.is_none() {
        return None;
    }
    let Some(err) = first else {
        return Some(RegistrarError::Other("namecheap: status not OK".into()));
    };
    let number = err.attribute("Number").unwrap_or_default();
    let text = err.text().unwrap_or_default().to_ascii_lowercase();
    Some(match number {
        "1010100" | "1011102" | "1011500" | "1010101" | "1011150" => RegistrarError::InvalidToken,
        "2019166" | "2019167" | "2030280" => RegistrarError::DomainNotInAccount,
        _ if text.contains("rate") || text.contains("too many") => RegistrarError::RateLimited,
        n => RegistrarError::Other(format!("namecheap error {n}")),
    })
}

impl Namecheap {
    /// An adapter at `base`.
    pub fn new(base: &str, http: reqwest::Client) -> Self {
        Namecheap {
            base: base.to_owned(),
            http,
        }
    }

    /// Calls `command`; returns the XML text after the envelope check.
    async fn call(
        &self,
        token: &str,
        command: &str,
        extra: &[(&str, String)],
    ) -> RegResult<String> {
        let c = parse_token(token)?;
        let query = {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("ApiUser", c.api_user)
                .append_pair("ApiKey", c.api_key)
                .append_pair("UserName", c.user_name)
                .append_pair("ClientIp", c.client_ip)
                .append_pair("Command", command);
            for (k, v) in extra {
                q.append_pair(k, v);
            }
            q.finish()
        };
        let resp = self
            .http
            .get(format!("{}?{}", self.base, query))
            .header(ACCEPT, "application/xml")
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status().as_u16();
        if let Some(e) = common_status(status, false) {
            return Err(e);
        }
        if status != 200 {
            return Err(RegistrarError::Other(format!(
                "namecheap unexpected status {status}"
            )));
        }
        let text = resp.text().await.map_err(transport)?;
        let doc = roxmltree::Document::parse(&text)
            .map_err(|_| RegistrarError::Other("namecheap: body is not XML".into()))?;
        match envelope_error(&doc) {
            Some(e) => Err(e),
            None => Ok(text),
        }
    }
}

#[async_trait]
impl Registrar for Namecheap {
    fn name(&self) -> &'static str {
        "namecheap"
    }

    async fn validate_token(&self, token: &str, domain: &str) -> RegResult<()> {
        self.call(token, "namecheap.users.getBalances", &[]).await?;
        for page in 1..200u32 {
            let text = self
                .call(
                    token,
                    "namecheap.domains.getList",
                    &[("Page", page.to_string()), ("PageSize", "100".into())],
                )
                .await?;
            let doc = roxmltree::Document::parse(&text)
                .map_err(|_| RegistrarError::Other("namecheap: body is not XML".into()))?;
            let names: Vec<&str> = doc
                .descendants()
                .filter(|n| n.tag_name().name() == "Domain")
                .filter_map(|n| n.attribute("Name"))
                .collect();
            if names.iter().any(|n| n.eq_ignore_ascii_case(domain)) {
                return Ok(());
            }
            let total: u32 = doc
                .descendants()
                .find(|n| n.tag_name().name() == "TotalItems")
                .and_then(|n| n.text())
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            if names.is_empty() || page * 100 >= total {
                break;
            }
        }
        Err(RegistrarError::DomainNotInAccount)
    }

    async fn set_nameservers(&self, token: &str, domain: &str, ns: &[String]) -> RegResult<()> {
        require_ns(ns, "namecheap")?;
        let (sld, tld) = split_domain(domain)?;
        self.call(
            token,
            "namecheap.domains.dns.setCustom",
            &[("SLD", sld), ("TLD", tld), ("Nameservers", ns.join(","))],
        )
        .await
        .map(|_| ())
    }

    async fn get_nameservers(&self, token: &str, domain: &str) -> RegResult<Vec<String>> {
        let (sld, tld) = split_domain(domain)?;
        let text = self
            .call(
                token,
                "namecheap.domains.dns.getList",
                &[("SLD", sld), ("TLD", tld)],
            )
            .await?;
        let doc = roxmltree::Document::parse(&text)
            .map_err(|_| RegistrarError::Other("namecheap: body is not XML".into()))?;
        Ok(doc
            .descendants()
            .filter(|n| n.tag_name().name() == "Nameserver")
            .filter_map(|n| n.text().map(|t| t.trim().to_owned()))
            .filter(|t| !t.is_empty())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_split() {
        assert_eq!(
            split_domain("acme.co.uk").unwrap(),
            ("acme".into(), "co.uk".into())
        );
        assert_eq!(
            split_domain("Example.COM").unwrap(),
            ("example".into(), "com".into())
        );
        for bad in ["weird", ".invalid", "trailing."] {
            assert!(split_domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens() {
        assert_eq!(
            parse_token("u:k:n:1.2.3.4").unwrap(),
            Creds {
                api_user: "u",
                api_key: "k",
                user_name: "n",
                client_ip: "1.2.3.4"
            }
        );
        assert_eq!(
            parse_token("u:k:1.2.3.4").unwrap(),
            Creds {
                api_user: "u",
                api_key: "k",
                user_name: "u",
                client_ip: "1.2.3.4"
            }
        );
        assert_eq!(parse_token("u:k").unwrap().client_ip, "127.0.0.1");
        assert!(parse_token("u").is_err());
        assert!(parse_token(":k").is_err());
    }
}
