//! The parameters of ERP.net's installation links, their defaults, their
//! validation, and how they map onto a trusted-app record.

use erpgate::ScopeSet;
use erpgate_store::records::{ClientType, ReferenceTokenPolicy, TrustedApp};

use crate::oauth::form::Form;

/// The SystemUser an install with service access pre-fills.
pub const SYSTEM_APPLICATION_USER: &str = "SYSTEM_APPLICATION_USER";

/// The name of an app installed without `applicationName`.
pub const UNNAMED: &str = "(unnamed)";

/// Scopes an installation link may ask for.
const INSTALLABLE_SCOPES: [&str; 5] = ["openid", "profile", "read", "update", "offline_access"];

/// Which users the app may act for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impersonate {
    /// Nobody: no interactive sign-in.
    None,
    /// Internal users.
    Internal,
    /// Internal and community users.
    All,
}

/// How the app reaches the API on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceAccess {
    /// It does not.
    None,
    /// Client credentials, as its SystemUser.
    ClientCredentials,
    /// A service access token (SAT), delivered with the install event.
    ReferenceToken,
}

/// A validated installation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    /// `applicationUri`: the app's `client_id`.
    pub application_uri: String,
    /// `redirectUri`: the sign-in return address, and where lifecycle
    /// events are posted.
    pub redirect_uri: Option<String>,
    /// `applicationName`, default `(unnamed)`.
    pub name: String,
    /// `clientType`, default `None`.
    pub client_type: ClientType,
    /// `impersonate`, default `none`.
    pub impersonate: Impersonate,
    /// `requestSecret`, default false.
    pub request_secret: bool,
    /// `serviceAccess`, default `none`.
    pub service_access: ServiceAccess,
    /// `referenceTokens`, default `none`.
    pub reference_tokens: ReferenceTokenPolicy,
    /// `scope`, default empty.
    pub scope: ScopeSet,
}

/// A parameter that is missing, repeated, unknown or out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parameter}: {problem}")]
pub struct ParamError {
    /// The offending parameter.
    pub parameter: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

fn bad(parameter: &'static str, problem: impl Into<String>) -> ParamError {
    ParamError {
        parameter,
        problem: problem.into(),
    }
}

const INSTALL_PARAMS: [&str; 9] = [
    "applicationUri",
    "redirectUri",
    "applicationName",
    "clientType",
    "impersonate",
    "requestSecret",
    "serviceAccess",
    "referenceTokens",
    "scope",
];

/// Rejects parameters outside `allowed` (a typo would otherwise silently
/// install something other than what the link's author meant). `csrf` is
/// the confirmation form's own field.
pub fn only_known(form: &Form, allowed: &[&str]) -> Result<(), ParamError> {
    match form
        .0
        .keys()
        .find(|k| k.as_str() != "csrf" && !allowed.contains(&k.as_str()))
    {
        Some(_) => Err(bad(
            "parameters",
            format!("only {} are accepted", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

/// `applicationUri`: required, at most 200 printable characters.
pub fn application_uri(form: &Form) -> Result<String, ParamError> {
    let uri = form
        .get("applicationUri")
        .ok_or_else(|| bad("applicationUri", "required"))?;
    if uri.chars().count() > 200 || uri.chars().any(char::is_control) || uri.trim() != uri {
        return Err(bad(
            "applicationUri",
            "at most 200 characters, no control characters or surrounding space",
        ));
    }
    Ok(uri.to_owned())
}

fn choice<T: Copy>(
    form: &Form,
    parameter: &'static str,
    default: T,
    values: &[(&str, T)],
) -> Result<T, ParamError> {
    let Some(given) = form.get(parameter) else {
        return Ok(default);
    };
    values
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(given))
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
            bad(parameter, format!("one of {}", names.join(", ")))
        })
}

fn redirect_uri(form: &Form) -> Result<Option<String>, ParamError> {
    let Some(uri) = form.get("redirectUri") else {
        return Ok(None);
    };
    let valid = (uri.starts_with("https://") || uri.starts_with("http://"))
        && uri.len() <= 2048
        && !uri.contains('#')
        && !uri.chars().any(|c| c.is_control() || c.is_whitespace())
        && uri
            .split_once("://")
            .is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'));
    if !valid {
        return Err(bad(
            "redirectUri",
            "an absolute http or https URL without a fragment",
        ));
    }
    Ok(Some(uri.to_owned()))
}

impl Install {
    /// Reads and validates an installation link's parameters.
    pub fn parse(form: &Form) -> Result<Self, ParamError> {
        only_known(form, &INSTALL_PARAMS)?;
        let application_uri = application_uri(form)?;
        let name = match form.get("applicationName") {
            Some(n) if n.chars().count() > 200 || n.chars().any(char::is_control) => {
                return Err(bad(
                    "applicationName",
                    "at most 200 characters, no control characters",
                ));
            }
            Some(n) => n.to_owned(),
            None => UNNAMED.to_owned(),
        };
        let client_type = choice(
            form,
            "clientType",
            ClientType::None,
            &[
                ("Confidential", ClientType::Confidential),
                ("Public", ClientType::Public),
                ("None", ClientType::None),
            ],
        )?;
        let impersonate = choice(
            form,
            "impersonate",
            Impersonate::None,
            &[
                ("none", Impersonate::None),
                ("internal", Impersonate::Internal),
                ("all", Impersonate::All),
            ],
        )?;
        let request_secret = choice(
            form,
            "requestSecret",
            false,
            &[("true", true), ("false", false)],
        )?;
        let service_access = choice(
            form,
            "serviceAccess",
            ServiceAccess::None,
            &[
                ("none", ServiceAccess::None),
                ("clientCredentials", ServiceAccess::ClientCredentials),
                ("referenceToken", ServiceAccess::ReferenceToken),
            ],
        )?;
        let reference_tokens = choice(
            form,
            "referenceTokens",
            ReferenceTokenPolicy::None,
            &[
                ("none", ReferenceTokenPolicy::None),
                (
                    "authenticatedUsers",
                    ReferenceTokenPolicy::AuthenticatedUsers,
                ),
                (
                    "administratorsOnly",
                    ReferenceTokenPolicy::AdministratorsOnly,
                ),
            ],
        )?;
        let scope = ScopeSet::parse(form.get("scope").unwrap_or(""))
            .map_err(|e| bad("scope", e.to_string()))?;
        if let Some(other) = scope.iter().find(|s| !INSTALLABLE_SCOPES.contains(s)) {
            return Err(bad(
                "scope",
                format!(
                    "`{other}` cannot be granted by an installation link (only {})",
                    INSTALLABLE_SCOPES.join(" ")
                ),
            ));
        }
        let install = Install {
            application_uri,
            redirect_uri: redirect_uri(form)?,
            name,
            client_type,
            impersonate,
            request_secret,
            service_access,
            reference_tokens,
            scope,
        };
        install.check()?;
        Ok(install)
    }

    /// ERP.net's rules across parameters, and the ones service access
    /// needs to work at all.
    fn check(&self) -> Result<(), ParamError> {
        if self.client_type == ClientType::Public {
            if self.redirect_uri.is_none() {
                return Err(bad("redirectUri", "a Public app needs a valid redirectUri"));
            }
            if self.impersonate == Impersonate::None {
                return Err(bad(
                    "impersonate",
                    "a Public app needs internal or all: it exists to sign users in",
                ));
            }
            if self.request_secret {
                return Err(bad("requestSecret", "a Public app cannot hold a secret"));
            }
        }
        if self.impersonate != Impersonate::None && self.redirect_uri.is_none() {
            return Err(bad(
                "redirectUri",
                "signing users in needs an address to return them to",
            ));
        }
        if self.service_access != ServiceAccess::None
            && self.client_type != ClientType::Confidential
        {
            return Err(bad(
                "serviceAccess",
                "only a Confidential app, which proves who it is with its secret, acts as a SystemUser",
            ));
        }
        if self.service_access == ServiceAccess::ClientCredentials && !self.request_secret {
            return Err(bad(
                "requestSecret",
                "client credentials need the secret: add requestSecret=true",
            ));
        }
        Ok(())
    }

    /// The trusted-app record the install creates (without its secret).
    pub fn app(&self, now: u64) -> TrustedApp {
        let mut app = TrustedApp::new(&self.application_uri, &self.name, now);
        app.client_type = self.client_type;
        app.redirect_uris = self.redirect_uri.iter().cloned().collect();
        app.internal_users_allowed = self.impersonate != Impersonate::None;
        app.community_users_allowed = self.impersonate == Impersonate::All;
        if self.service_access != ServiceAccess::None {
            app.system_user_allowed = true;
            app.system_user = Some(SYSTEM_APPLICATION_USER.to_owned());
        }
        app.scope = self.scope.clone();
        app.reference_tokens = match (self.service_access, self.reference_tokens) {
            // A SAT is minted at install; administrators mint any later ones.
            (ServiceAccess::ReferenceToken, ReferenceTokenPolicy::None) => {
                ReferenceTokenPolicy::AdministratorsOnly
            }
            (_, policy) => policy,
        };
        app
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(query: &str) -> Form {
        Form::parse(query.as_bytes()).unwrap()
    }

    #[test]
    fn defaults_and_mapping() {
        let install = Install::parse(&form("applicationUri=com.example.app")).unwrap();
        assert_eq!(install.name, UNNAMED);
        assert_eq!(install.client_type, ClientType::None);
        assert_eq!(install.impersonate, Impersonate::None);
        assert!(!install.request_secret);
        assert_eq!(install.service_access, ServiceAccess::None);
        assert_eq!(install.reference_tokens, ReferenceTokenPolicy::None);
        let app = install.app(5);
        assert!(app.enabled && !app.internal_users_allowed && !app.system_user_allowed);
        assert!(!app.internal, "installed apps are external");

        let install = Install::parse(&form(
            "applicationUri=a&applicationName=A&clientType=Confidential&impersonate=all&requestSecret=true&serviceAccess=clientCredentials&referenceTokens=authenticatedUsers&scope=openid+read&redirectUri=http%3A%2F%2F127.0.0.1%3A9%2Fcb",
        ))
        .unwrap();
        let app = install.app(5);
        assert!(app.internal_users_allowed && app.community_users_allowed);
        assert_eq!(app.system_user.as_deref(), Some(SYSTEM_APPLICATION_USER));
        assert_eq!(app.redirect_uris, ["http://127.0.0.1:9/cb"]);
        assert_eq!(
            app.reference_tokens,
            ReferenceTokenPolicy::AuthenticatedUsers
        );
        assert_eq!(app.scope.to_string(), "openid read");
    }

    #[test]
    fn every_rule_names_its_parameter() {
        let cases = [
            ("", "applicationUri"),
            ("applicationUri=a&applicationUri=b", "parse"),
            ("applicationUri=a&clientTyp=Public", "parameters"),
            ("applicationUri=a&clientType=Secret", "clientType"),
            ("applicationUri=a&scope=read+sec", "scope"),
            ("applicationUri=a&redirectUri=javascript:x", "redirectUri"),
            (
                "applicationUri=a&redirectUri=https://h/cb%23frag",
                "redirectUri",
            ),
            (
                "applicationUri=a&clientType=Public&impersonate=all",
                "redirectUri",
            ),
            (
                "applicationUri=a&clientType=Public&redirectUri=https://h/cb",
                "impersonate",
            ),
            (
                "applicationUri=a&clientType=Public&redirectUri=https://h/cb&impersonate=all&requestSecret=true",
                "requestSecret",
            ),
            (
                "applicationUri=a&serviceAccess=clientCredentials",
                "serviceAccess",
            ),
            (
                "applicationUri=a&clientType=Confidential&serviceAccess=clientCredentials",
                "requestSecret",
            ),
            ("applicationUri=a&requestSecret=yes", "requestSecret"),
        ];
        for (query, parameter) in cases {
            match Form::parse(query.as_bytes()) {
                Err(_) => assert_eq!(parameter, "parse", "{query}"),
                Ok(f) => assert_eq!(
                    Install::parse(&f).map_err(|e| e.parameter),
                    Err(parameter),
                    "{query}"
                ),
            }
        }
    }

    #[test]
    fn a_sat_install_lets_administrators_mint() {
        let install = Install::parse(&form(
            "applicationUri=a&clientType=Confidential&serviceAccess=referenceToken",
        ))
        .unwrap();
        assert_eq!(
            install.app(1).reference_tokens,
            ReferenceTokenPolicy::AdministratorsOnly
        );
    }
}
