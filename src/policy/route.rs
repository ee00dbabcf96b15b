//! Route matching: methods plus an exact, prefix or segment-pattern path; and the
//! containment test that finds shadowed routes at compile time.

use crate::principal::TokenKind;
use crate::scope::ScopeSet;

/// One segment of a path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Exactly this text.
    Literal(String),
    /// `*`: exactly one non-empty segment.
    Any,
    /// `**`: the rest of the path, one or more segments; last only.
    Rest,
}

/// How a route matches the request path (the query string is ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// The whole path equals this.
    Exact(String),
    /// The path starts with this.
    Prefix(String),
    /// Segment by segment, after the leading `/`.
    Pattern(Vec<Segment>),
}

/// What a matched route requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No credential needed; identity headers are still stripped.
    Public,
    /// A valid credential with these scopes and of these kinds.
    Protected {
        /// Scopes that must be granted.
        scopes: ScopeRequirement,
        /// Token kinds the route accepts.
        kinds: Vec<TokenKind>,
    },
}

/// Required scopes: all of one set, or all of any one of several sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeRequirement {
    /// Every scope in the set.
    AllOf(ScopeSet),
    /// Every scope of at least one set.
    AnyOf(Vec<ScopeSet>),
}

impl ScopeRequirement {
    /// Whether `granted` satisfies the requirement.
    pub fn satisfied_by(&self, granted: &ScopeSet) -> bool {
        match self {
            ScopeRequirement::AllOf(set) => granted.contains_all(set),
            ScopeRequirement::AnyOf(sets) => sets.iter().any(|s| granted.contains_all(s)),
        }
    }

    /// The scopes named in the `insufficient_scope` challenge: the set for
    /// all-of, the first alternative for any-of.
    pub fn challenge(&self) -> ScopeSet {
        match self {
            ScopeRequirement::AllOf(set) => set.clone(),
            ScopeRequirement::AnyOf(sets) => sets.first().cloned().unwrap_or_default(),
        }
    }
}

/// A compiled route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The route's name, used in errors, logs and metrics.
    pub name: String,
    /// Upper-case methods; `None` matches every method.
    pub methods: Option<Vec<String>>,
    /// The path match, already case-folded when the policy is case-insensitive.
    pub path: PathMatch,
    /// What the route requires.
    pub access: Access,
    /// False in shadow mode: a denial is recorded, and the request goes on
    /// untouched.
    pub enforce: bool,
    /// Only DPoP-bound tokens, with their proof, pass (RFC 9449).
    pub require_dpop: bool,
}

impl PathMatch {
    /// Parses a pattern such as `/api/domain/odata/*` or `/files/**`.
    pub fn pattern(text: &str) -> Option<Self> {
        let rest = text.strip_prefix('/')?;
        let parts: Vec<&str> = rest.split('/').collect();
        let last = parts.len().saturating_sub(1);
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            segments.push(match *part {
                "" => return None,
                "*" => Segment::Any,
                "**" if i == last => Segment::Rest,
                p if p.contains('*') => return None,
                p => Segment::Literal(p.to_owned()),
            });
        }
        Some(PathMatch::Pattern(segments))
    }

    /// Whether `path` (without query) matches. With `fold`, ASCII letters
    /// compare case-insensitively (the route's own text is stored folded),
    /// without copying the path.
    pub fn matches(&self, path: &str, fold: bool) -> bool {
        let same = |a: &str, b: &str| {
            if fold {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        match self {
            PathMatch::Exact(p) => same(path, p),
            PathMatch::Prefix(p) => path.get(..p.len()).is_some_and(|head| same(head, p)),
            PathMatch::Pattern(segments) => {
                let Some(rest) = path.strip_prefix('/') else {
                    return false;
                };
                let mut parts = rest.split('/');
                for segment in segments {
                    match segment {
                        // One or more segments, none of them empty.
                        Segment::Rest => {
                            let mut any = false;
                            for part in parts.by_ref() {
                                if part.is_empty() {
                                    return false;
                                }
                                any = true;
                            }
                            return any;
                        }
                        Segment::Any => match parts.next() {
                            Some(part) if !part.is_empty() => {}
                            _ => return false,
                        },
                        Segment::Literal(l) => match parts.next() {
                            Some(part) if same(part, l) => {}
                            _ => return false,
                        },
                    }
                }
                parts.next().is_none()
            }
        }
    }

    /// The literal text every match starts with.
    fn literal_prefix(&self) -> String {
        match self {
            PathMatch::Exact(p) | PathMatch::Prefix(p) => p.clone(),
            PathMatch::Pattern(segments) => {
                let mut out = String::from("/");
                for seg in segments {
                    match seg {
                        Segment::Literal(l) => {
                            out.push_str(l);
                            out.push('/');
                        }
                        Segment::Any | Segment::Rest => return out,
                    }
                }
                out.pop();
                out
            }
        }
    }

    /// Whether every path `other` matches is also matched by `self`. Conservative:
    /// `false` when containment cannot be shown.
    pub fn covers(&self, other: &PathMatch) -> bool {
        match (self, other) {
            (_, PathMatch::Exact(p)) => self.matches(p, false),
            (PathMatch::Exact(_), _) => false,
            (PathMatch::Prefix(a), b) => b.literal_prefix().starts_with(a.as_str()),
            (PathMatch::Pattern(a), PathMatch::Pattern(b)) => pattern_covers(a, b),
            (PathMatch::Pattern(a), PathMatch::Prefix(p)) => match a.split_last() {
                Some((Segment::Rest, init))
                    if init.iter().all(|s| matches!(s, Segment::Literal(_))) =>
                {
                    let mut base = String::from("/");
                    for seg in init {
                        if let Segment::Literal(l) = seg {
                            base.push_str(l);
                            base.push('/');
                        }
                    }
                    p.starts_with(&base)
                }
                _ => false,
            },
        }
    }
}

fn pattern_covers(a: &[Segment], b: &[Segment]) -> bool {
    match (a.split_first(), b.split_first()) {
        (None, None) => true,
        (Some((Segment::Rest, _)), Some(_)) => true,
        (Some((Segment::Any, sa)), Some((Segment::Any | Segment::Literal(_), sb))) => {
            pattern_covers(sa, sb)
        }
        (Some((Segment::Literal(x), sa)), Some((Segment::Literal(y), sb))) => {
            x == y && pattern_covers(sa, sb)
        }
        _ => false,
    }
}

impl Route {
    /// Whether the route applies to this method.
    pub fn allows_method(&self, method: &str) -> bool {
        self.methods
            .as_ref()
            .is_none_or(|ms| ms.iter().any(|m| m == method))
    }

    /// Whether `self`, placed earlier, takes every request `later` would get.
    pub fn shadows(&self, later: &Route) -> bool {
        let methods_cover = match (&self.methods, &later.methods) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => b.iter().all(|m| a.contains(m)),
        };
        methods_cover && self.path.covers(&later.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> PathMatch {
        PathMatch::pattern(s).unwrap()
    }

    #[test]
    fn pattern_matching() {
        let p = pat("/api/domain/odata/*");
        assert!(p.matches("/api/domain/odata/Crm_Customers", false));
        assert!(!p.matches("/api/domain/odata/Crm_Customers/x", false));
        assert!(!p.matches("/api/domain/odata/", false));
        let r = pat("/api/**");
        assert!(r.matches("/api/a/b/c", false));
        assert!(!r.matches("/api", false));
        assert!(!r.matches("/api/a//b", false));
        assert!(!r.matches("/api/", false));
    }

    #[test]
    fn folded_matching_compares_ascii_case_insensitively_and_nothing_else() {
        // Routes of a case-insensitive policy are stored folded.
        let p = pat("/api/domain/odata/*");
        assert!(p.matches("/API/Domain/OData/Crm_Customers", true));
        assert!(!p.matches("/API/Domain/OData/Crm_Customers", false));
        let exact = PathMatch::Exact("/health".into());
        assert!(exact.matches("/HEALTH", true));
        assert!(!exact.matches("/HEALTH", false));
        let prefix = PathMatch::Prefix("/files/".into());
        assert!(prefix.matches("/Files/a", true));
        assert!(!prefix.matches("/Files/a", false));
        assert!(!prefix.matches("/file", true));
        // Only ASCII folds: the Kelvin sign is not a `k`.
        assert!(!PathMatch::Exact("/k".into()).matches("/\u{212A}", true));
        // A prefix that would end inside a multi-byte character does not match.
        assert!(!PathMatch::Prefix("/a".into()).matches("/\u{e9}", true));
        assert!(PathMatch::pattern("/a/**/b").is_none());
        assert!(PathMatch::pattern("/a//b").is_none());
        assert!(PathMatch::pattern("/a/b*").is_none());
        assert!(PathMatch::pattern("a").is_none());
    }

    #[test]
    fn containment() {
        let prefix = PathMatch::Prefix("/api/".into());
        assert!(prefix.covers(&PathMatch::Exact("/api/x".into())));
        assert!(prefix.covers(&PathMatch::Prefix("/api/domain".into())));
        assert!(prefix.covers(&pat("/api/*/x")));
        assert!(!prefix.covers(&pat("/*/x")));
        assert!(pat("/api/**").covers(&PathMatch::Prefix("/api/x".into())));
        assert!(pat("/a/*").covers(&pat("/a/b")));
        assert!(!pat("/a/b").covers(&pat("/a/*")));
        assert!(!PathMatch::Exact("/a".into()).covers(&PathMatch::Prefix("/a".into())));
    }
}
