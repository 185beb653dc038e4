//! Who may do what: four roles, and the access each route asks for.
//!
//! Roles are not a ladder: an approver decides (approvals, exemptions,
//! baselines) but does not operate the fleet, an operator operates (hosts,
//! enrollment, groups, feed imports) but does not decide, an auditor reads
//! everything and changes nothing but their own acknowledgement, and an
//! administrator does all of it plus users, policies and settings. An API
//! token carries scopes, which narrow its user's role and never widen it.

use std::fmt;

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Everything.
    Admin,
    /// Decides: approvals, go/no-go, exemptions, baselines.
    Approver,
    /// Operates: hosts, enrollment tokens, groups, feed imports.
    Operator,
    /// Reads everything; changes nothing.
    Auditor,
}

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    /// Read anything.
    Read,
    /// Operate the fleet.
    Operate,
    /// Make a planning decision.
    Approve,
    /// Administer users, policies and settings.
    Administer,
    /// Act on one's own account (sign out, acknowledge the procedure).
    Member,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Approver, Role::Operator, Role::Auditor];

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Approver => "approver",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
        }
    }

    /// A role by name.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Whether the role allows an access.
    pub fn permits(self, access: Access) -> bool {
        matches!(
            (self, access),
            (Role::Admin, _)
                | (_, Access::Read | Access::Member)
                | (Role::Approver, Access::Approve)
                | (Role::Operator, Access::Operate)
        )
    }

    /// The scopes a token of this role may carry.
    pub fn scopes(self) -> Vec<Access> {
        Access::SCOPES
            .into_iter()
            .filter(|a| self.permits(*a))
            .collect()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Access {
    /// The accesses a token's scopes name (`Member` is always granted).
    pub const SCOPES: [Access; 4] = [
        Access::Read,
        Access::Operate,
        Access::Approve,
        Access::Administer,
    ];

    /// The scope's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Operate => "operate",
            Access::Approve => "approve",
            Access::Administer => "administer",
            Access::Member => "member",
        }
    }

    /// Parses a comma-separated scope list; an empty list is refused.
    pub fn parse_scopes(text: &str) -> Result<Vec<Access>, String> {
        let mut scopes = Vec::new();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let scope = Access::SCOPES
                .into_iter()
                .find(|a| a.as_str() == word)
                .ok_or_else(|| {
                    format!("unknown scope {word:?}: use read, operate, approve or administer")
                })?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        if scopes.is_empty() {
            return Err("no scope given: use read, operate, approve or administer".into());
        }
        scopes.sort();
        Ok(scopes)
    }

    /// Scopes as stored: comma-separated.
    pub fn join(scopes: &[Access]) -> String {
        scopes
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Whether a caller with `role`, through a token limited to `scopes` (none
/// for a session), may have `access`.
pub fn allowed(role: Role, scopes: Option<&[Access]>, access: Access) -> bool {
    role.permits(access) && (access == Access::Member || scopes.is_none_or(|s| s.contains(&access)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_permit_their_own_work_only() {
        use Access::*;
        let table = [
            (Role::Admin, [true, true, true, true, true]),
            (Role::Approver, [true, false, true, false, true]),
            (Role::Operator, [true, true, false, false, true]),
            (Role::Auditor, [true, false, false, false, true]),
        ];
        for (role, expected) in table {
            let got: Vec<bool> = [Read, Operate, Approve, Administer, Member]
                .iter()
                .map(|a| role.permits(*a))
                .collect();
            assert_eq!(got, expected, "{role}");
        }
    }

    #[test]
    fn scopes_narrow_a_role_and_never_widen_it() {
        let read = [Access::Read];
        assert!(allowed(Role::Admin, Some(&read), Access::Read));
        assert!(!allowed(Role::Admin, Some(&read), Access::Administer));
        assert!(allowed(Role::Admin, Some(&read), Access::Member));
        let all = Access::SCOPES;
        assert!(!allowed(Role::Auditor, Some(&all), Access::Operate));
        assert!(allowed(Role::Operator, None, Access::Operate));
    }

    #[test]
    fn scope_lists_are_parsed_and_checked() {
        assert_eq!(
            Access::parse_scopes("approve, read,read").unwrap(),
            vec![Access::Read, Access::Approve]
        );
        assert!(Access::parse_scopes("read,root")
            .unwrap_err()
            .contains("\"root\""));
        assert!(Access::parse_scopes(" , ").is_err());
        assert_eq!(Role::parse("approver"), Some(Role::Approver));
        assert_eq!(Role::parse("root"), None);
        assert_eq!(Role::Operator.scopes(), vec![Access::Read, Access::Operate]);
    }
}
