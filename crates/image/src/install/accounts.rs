//! Accounts: lines for `/etc/passwd` (`name:x:uid:gid:gecos:home:shell`) and `/etc/group`
//! (`name:x:gid:members`) added on top of what the packages ship.
//!
//! An added account must agree with every account already known, shipped or added: the
//! same name with other values, or the same id under another name, is an error. Adding an
//! account that is already there with the same values is a no-op, so adding `nonroot` to a
//! base that ships it is fine.

use crate::install::error::InstallError;

/// `/etc/passwd`, as named in errors.
pub(crate) const PASSWD: &str = "/etc/passwd";
/// `/etc/group`, as named in errors.
pub(crate) const GROUP: &str = "/etc/group";

/// One `/etc/passwd` account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

impl User {
    pub fn line(&self) -> String {
        format!("{}:x:{}:{}:{}:{}:{}", self.name, self.uid, self.gid, self.gecos, self.home, self.shell)
    }

    /// Parses one line of `/etc/passwd`; `None` for comments and malformed lines, which are
    /// kept verbatim but take no part in checks.
    fn parse(line: &str) -> Option<User> {
        let fields: Vec<&str> = line.split(':').collect();
        let [name, _, uid, gid, gecos, home, shell] = fields[..] else { return None };
        Some(User {
            name: name.to_owned(),
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
            gecos: gecos.to_owned(),
            home: home.to_owned(),
            shell: shell.to_owned(),
        })
    }

    fn validate(&self) -> Result<(), InstallError> {
        let invalid = |field, value: &str, reason| InstallError::InvalidAccountField {
            kind: "user",
            name: self.name.clone(),
            field,
            value: value.escape_debug().to_string(),
            reason,
        };
        check_name("user", &self.name)?;
        if let Some(reason) = field_problem(&self.gecos) {
            return Err(invalid("gecos", &self.gecos, reason));
        }
        if !self.home.starts_with('/') {
            return Err(invalid("home", &self.home, "it must be an absolute path"));
        }
        if let Some(reason) = field_problem(&self.home) {
            return Err(invalid("home", &self.home, reason));
        }
        if let Some(reason) = field_problem(&self.shell) {
            return Err(invalid("shell", &self.shell, reason));
        }
        Ok(())
    }
}

/// One `/etc/group` group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

impl Group {
    pub fn line(&self) -> String {
        format!("{}:x:{}:{}", self.name, self.gid, self.members.join(","))
    }

    fn parse(line: &str) -> Option<Group> {
        let fields: Vec<&str> = line.split(':').collect();
        let [name, _, gid, members] = fields[..] else { return None };
        Some(Group {
            name: name.to_owned(),
            gid: gid.parse().ok()?,
            members: members.split(',').filter(|m| !m.is_empty()).map(str::to_owned).collect(),
        })
    }

    fn validate(&self) -> Result<(), InstallError> {
        check_name("group", &self.name)?;
        for member in &self.members {
            if check_name("user", member).is_err() {
                return Err(InstallError::InvalidAccountField {
                    kind: "group",
                    name: self.name.clone(),
                    field: "member",
                    value: member.escape_debug().to_string(),
                    reason: "names must be non-empty, without `:`, `,` or whitespace",
                });
            }
        }
        Ok(())
    }
}

fn check_name(kind: &'static str, name: &str) -> Result<(), InstallError> {
    if name.is_empty() || name.contains([':', ',']) || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InstallError::InvalidAccountField {
            kind,
            name: name.escape_debug().to_string(),
            field: "name",
            value: name.escape_debug().to_string(),
            reason: "names must be non-empty, without `:`, `,` or whitespace",
        });
    }
    Ok(())
}

fn field_problem(value: &str) -> Option<&'static str> {
    (value.contains(':') || value.chars().any(char::is_control))
        .then_some("it must not contain `:` or control characters")
}

/// The accounts added by the caller, in the order they were added.
#[derive(Debug, Default)]
pub(crate) struct Accounts {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
}

impl Accounts {
    /// Validates `user` against the shipped `/etc/passwd` text and the users added so far.
    /// `Ok(true)` when the very same account is already there.
    pub fn check_user(&self, shipped: Option<&str>, user: &User) -> Result<bool, InstallError> {
        user.validate()?;
        let known = shipped.into_iter().flat_map(str::lines).filter_map(User::parse).chain(self.users.iter().cloned());
        for existing in known {
            if existing.name == user.name && existing == *user {
                return Ok(true);
            }
            if existing.name == user.name || existing.uid == user.uid {
                return Err(InstallError::AccountConflict {
                    kind: "user",
                    name: user.name.clone(),
                    ids: format!("{}:{}", user.uid, user.gid),
                    file: PASSWD,
                    existing: existing.line(),
                });
            }
        }
        Ok(false)
    }

    /// Validates `group` against the shipped `/etc/group` text and the groups added so far.
    /// `Ok(true)` when the very same group is already there.
    pub fn check_group(&self, shipped: Option<&str>, group: &Group) -> Result<bool, InstallError> {
        group.validate()?;
        let known =
            shipped.into_iter().flat_map(str::lines).filter_map(Group::parse).chain(self.groups.iter().cloned());
        for existing in known {
            if existing.name == group.name && existing == *group {
                return Ok(true);
            }
            if existing.name == group.name || existing.gid == group.gid {
                return Err(InstallError::AccountConflict {
                    kind: "group",
                    name: group.name.clone(),
                    ids: group.gid.to_string(),
                    file: GROUP,
                    existing: existing.line(),
                });
            }
        }
        Ok(false)
    }

    /// Whether a user called `name` was added or shipped.
    pub fn has_user(&self, shipped: Option<&str>, name: &str) -> bool {
        self.users.iter().any(|u| u.name == name)
            || shipped.into_iter().flat_map(str::lines).filter_map(User::parse).any(|u| u.name == name)
    }

    /// The user called `name_or_uid` (a name, or a decimal uid), added or shipped.
    pub fn lookup_user(&self, shipped: Option<&str>, name_or_uid: &str) -> Option<(u32, u32)> {
        let uid: Option<u32> = name_or_uid.parse().ok();
        self.users
            .iter()
            .cloned()
            .chain(shipped.into_iter().flat_map(str::lines).filter_map(User::parse))
            .find(|u| u.name == name_or_uid || Some(u.uid) == uid)
            .map(|u| (u.uid, u.gid))
    }

    /// Every user, shipped then added: name -> (uid, gid).
    pub fn all_users(&self, shipped: Option<&str>) -> std::collections::BTreeMap<String, (u32, u32)> {
        shipped
            .into_iter()
            .flat_map(str::lines)
            .filter_map(User::parse)
            .chain(self.users.iter().cloned())
            .map(|u| (u.name, (u.uid, u.gid)))
            .collect()
    }

    /// The final `/etc/passwd`: the shipped text followed by the added users that it does not
    /// already hold, re-checked against it (a package installed after `add_user` may ship
    /// a clashing line). `None` when nothing was added.
    pub fn render_passwd(&self, shipped: Option<&str>) -> Result<Option<String>, InstallError> {
        let fresh = Accounts::default();
        let mut lines = Vec::new();
        for user in &self.users {
            if !fresh.check_user(shipped, user)? {
                lines.push(user.line());
            }
        }
        Ok(append(shipped, lines, self.users.is_empty()))
    }

    /// The final `/etc/group`, as [`Accounts::render_passwd`].
    pub fn render_group(&self, shipped: Option<&str>) -> Result<Option<String>, InstallError> {
        let fresh = Accounts::default();
        let mut lines = Vec::new();
        for group in &self.groups {
            if !fresh.check_group(shipped, group)? {
                lines.push(group.line());
            }
        }
        Ok(append(shipped, lines, self.groups.is_empty()))
    }
}

fn append(shipped: Option<&str>, lines: Vec<String>, nothing_added: bool) -> Option<String> {
    if nothing_added {
        return None;
    }
    let mut text = shipped.unwrap_or_default().to_owned();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for line in lines {
        text.push_str(&line);
        text.push('\n');
    }
    Some(text)
}
