//! Architectures: one `Arch` type, with converters to APK and OCI names at the edges.

use std::fmt;

/// A CPU architecture an image can be built for. The order of the variants is the order of
/// platforms in a multi-arch index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    /// `x86` / `linux/386`.
    X86,
    /// `x86_64` / `linux/amd64`.
    X86_64,
    /// `aarch64` / `linux/arm64`.
    Aarch64,
    /// `armhf` / `linux/arm/v6`.
    Armhf,
    /// `armv7` / `linux/arm/v7`.
    Armv7,
    /// `ppc64le` / `linux/ppc64le`.
    Ppc64le,
    /// `riscv64` / `linux/riscv64`.
    Riscv64,
    /// `s390x` / `linux/s390x`.
    S390x,
}

/// An architecture name that is not one of the eight.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown architecture `{name}`{hint}")]
pub struct UnknownArch {
    /// The name as written.
    pub name: String,
    /// `, did you mean ...?`, or the list of known names.
    hint: String,
}

impl Arch {
    /// Every architecture, in index order.
    pub const ALL: [Arch; 8] =
        [Arch::X86, Arch::X86_64, Arch::Aarch64, Arch::Armhf, Arch::Armv7, Arch::Ppc64le, Arch::Riscv64, Arch::S390x];

    /// The APK name (`x86_64`), as in repository paths and `.PKGINFO`.
    pub fn apk(self) -> &'static str {
        match self {
            Arch::X86 => "x86",
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::Armhf => "armhf",
            Arch::Armv7 => "armv7",
            Arch::Ppc64le => "ppc64le",
            Arch::Riscv64 => "riscv64",
            Arch::S390x => "s390x",
        }
    }

    /// The OCI `architecture` (`amd64`).
    pub fn oci_architecture(self) -> &'static str {
        match self {
            Arch::X86 => "386",
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
            Arch::Armhf | Arch::Armv7 => "arm",
            Arch::Ppc64le => "ppc64le",
            Arch::Riscv64 => "riscv64",
            Arch::S390x => "s390x",
        }
    }

    /// The OCI `variant`, where one is needed.
    pub fn oci_variant(self) -> Option<&'static str> {
        match self {
            Arch::Armhf => Some("v6"),
            Arch::Armv7 => Some("v7"),
            _ => None,
        }
    }

    /// `linux/amd64`, `linux/arm/v7`.
    pub fn oci_platform(self) -> String {
        match self.oci_variant() {
            Some(v) => format!("linux/{}/{v}", self.oci_architecture()),
            None => format!("linux/{}", self.oci_architecture()),
        }
    }

    /// Parses an APK name (`aarch64`) or an OCI platform (`linux/arm64`, `arm64`).
    pub fn parse(name: &str) -> Result<Arch, UnknownArch> {
        let bare = name.strip_prefix("linux/").unwrap_or(name);
        Arch::ALL
            .into_iter()
            .find(|a| {
                a.apk() == name || a.oci_platform() == name || a.oci_platform().strip_prefix("linux/") == Some(bare)
            })
            .ok_or_else(|| {
                let names: Vec<&str> = Arch::ALL.iter().map(|a| a.apk()).collect();
                let mut hint = crate::hints::did_you_mean(name, names.iter().copied());
                if hint.is_empty() {
                    let known: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                    hint = format!(" (known: {})", known.join(", "));
                }
                UnknownArch { name: name.to_owned(), hint }
            })
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.apk())
    }
}

/// An architecture serializes as its APK name (`x86_64`), as lockfiles and action keys write it.
impl serde::Serialize for Arch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.apk())
    }
}

impl<'de> serde::Deserialize<'de> for Arch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Arch::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let table = [
            ("x86", "linux/386"),
            ("x86_64", "linux/amd64"),
            ("aarch64", "linux/arm64"),
            ("armhf", "linux/arm/v6"),
            ("armv7", "linux/arm/v7"),
            ("ppc64le", "linux/ppc64le"),
            ("riscv64", "linux/riscv64"),
            ("s390x", "linux/s390x"),
        ];
        for (apk, oci) in table {
            let a = Arch::parse(apk).expect(apk);
            assert_eq!(a.oci_platform(), oci);
            assert_eq!(Arch::parse(oci).expect(oci), a);
            assert_eq!(Arch::parse(oci.trim_start_matches("linux/")).expect(oci), a);
        }
        assert_eq!(
            Arch::parse("aarch46").expect_err("bad").to_string(),
            "unknown architecture `aarch46`, did you mean `aarch64`?"
        );
        assert_eq!(
            Arch::parse("mips").expect_err("bad").to_string(),
            "unknown architecture `mips` (known: `x86`, `x86_64`, `aarch64`, `armhf`, `armv7`, `ppc64le`, `riscv64`, `s390x`)"
        );
    }
}
