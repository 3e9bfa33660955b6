//! The engine's typed vocabulary of deployments: the three macro-step slots and the implementation kinds each
//! accepts (Kadeploy's `SetDeploymentEnv<Kind>`, `BroadcastEnv<Kind>`, `BootNewEnv<Kind>` classes), parsed once when
//! the configuration or a request is read and shown with Kadeploy's names everywhere else.

use std::fmt;

/// One macro-step slot of a deployment, in the order nodes go through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Slot {
    /// `SetDeploymentEnv`: bring the nodes into the deployment environment and prepare the disk.
    SetDeploymentEnv,
    /// `BroadcastEnv`: send the image and install it.
    BroadcastEnv,
    /// `BootNewEnv`: boot the deployed environment.
    BootNewEnv,
}

impl Slot {
    /// The slots in deployment order.
    pub const ALL: [Slot; 3] = [Slot::SetDeploymentEnv, Slot::BroadcastEnv, Slot::BootNewEnv];

    /// Kadeploy's name of the slot (`SetDeploymentEnv`).
    pub const fn name(self) -> &'static str {
        match self {
            Slot::SetDeploymentEnv => "SetDeploymentEnv",
            Slot::BroadcastEnv => "BroadcastEnv",
            Slot::BootNewEnv => "BootNewEnv",
        }
    }

    /// Position of the slot in a deployment (0..3): the `step1..3` columns of the statistics.
    pub const fn index(self) -> usize {
        match self {
            Slot::SetDeploymentEnv => 0,
            Slot::BroadcastEnv => 1,
            Slot::BootNewEnv => 2,
        }
    }

    /// The names of the kinds the slot accepts, in Kadeploy's order.
    pub const fn kind_names(self) -> &'static [&'static str] {
        match self {
            Slot::SetDeploymentEnv => &SetDeploymentEnvKind::NAMES,
            Slot::BroadcastEnv => &BroadcastEnvKind::NAMES,
            Slot::BootNewEnv => &BootNewEnvKind::NAMES,
        }
    }

    /// The kind of this slot called `name` (`Untrusted`), if any.
    pub fn parse_kind(self, name: &str) -> Option<MacroKind> {
        match self {
            Slot::SetDeploymentEnv => SetDeploymentEnvKind::parse(name).map(MacroKind::from),
            Slot::BroadcastEnv => BroadcastEnvKind::parse(name).map(MacroKind::from),
            Slot::BootNewEnv => BootNewEnvKind::parse(name).map(MacroKind::from),
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Declares the kinds of one slot with their names (the variant names, which are Kadeploy's).
macro_rules! slot_kinds {
    ($(#[$doc:meta])* $name:ident in $slot:ident { $($(#[$vdoc:meta])* $variant:ident,)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// How many kinds the slot has.
            pub const COUNT: usize = [$(stringify!($variant)),+].len();
            /// Every kind, in Kadeploy's order.
            pub const ALL: [$name; $name::COUNT] = [$($name::$variant),+];
            /// The configuration names of [`Self::ALL`], in the same order.
            pub const NAMES: [&'static str; $name::COUNT] = [$(stringify!($variant)),+];

            /// Kadeploy's name of the kind within its slot (`Kexec`).
            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($variant),)+
                }
            }

            /// Kadeploy's name of the implementation: slot then kind (`BootNewEnvKexec`).
            pub const fn instance_name(self) -> &'static str {
                match self {
                    $($name::$variant => concat!(stringify!($slot), stringify!($variant)),)+
                }
            }

            /// The kind called `name`, if any.
            pub fn parse(name: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|k| k.name() == name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl From<$name> for MacroKind {
            fn from(kind: $name) -> Self {
                MacroKind::$slot(kind)
            }
        }
    };
}

slot_kinds! {
    /// Implementations of `SetDeploymentEnv`.
    SetDeploymentEnvKind in SetDeploymentEnv {
        /// Reboot into the deploy kernel by PXE, then prepare the disk.
        Untrusted,
        /// Kexec into the deploy kernel from a deploy environment, then prepare the disk.
        Kexec,
        /// `Untrusted` with the environment's pre-install instead of the disk preparation.
        UntrustedCustomPreInstall,
        /// Use the running production environment to prepare the deploy partition.
        Prod,
        /// Boot an NFS root (not supported by this deployer).
        Nfsroot,
        /// Do nothing.
        Dummy,
    }
}

slot_kinds! {
    /// Implementations of `BroadcastEnv`.
    BroadcastEnvKind in BroadcastEnv {
        /// A chain of nodes.
        Chain,
        /// A binary tree.
        Tree,
        /// Kastafior's chain.
        Kastafior,
        /// Kascade's fault-tolerant chain.
        Kascade,
        /// BitTorrent (not supported by this deployer).
        Bittorrent,
        /// The cluster's `localops/broadcastenv/cmd`, run on the server.
        Custom,
        /// Do nothing.
        Dummy,
        /// IP multicast with repair (kadeploy-rs; not in Kadeploy 3.3).
        Multicast,
        /// A swarm exchanging verified chunks (kadeploy-rs; not in Kadeploy 3.3).
        Swarm,
        /// The strategy and chunk size the cluster's broadcast planner predicts fastest (kadeploy-rs;
        /// not in Kadeploy 3.3).
        Auto,
    }
}

slot_kinds! {
    /// Implementations of `BootNewEnv`.
    BootNewEnvKind in BootNewEnv {
        /// Kexec into the deployed environment.
        Kexec,
        /// Reboot from the deploy environment.
        Classical,
        /// A hard reboot through the power commands.
        HardReboot,
        /// Pivot the root (not supported by this deployer).
        PivotRoot,
        /// Do nothing.
        Dummy,
    }
}

/// One macro-step implementation: a kind of one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MacroKind {
    /// A `SetDeploymentEnv` implementation.
    SetDeploymentEnv(SetDeploymentEnvKind),
    /// A `BroadcastEnv` implementation.
    BroadcastEnv(BroadcastEnvKind),
    /// A `BootNewEnv` implementation.
    BootNewEnv(BootNewEnvKind),
}

impl MacroKind {
    /// The slot the kind belongs to.
    pub const fn slot(self) -> Slot {
        match self {
            MacroKind::SetDeploymentEnv(_) => Slot::SetDeploymentEnv,
            MacroKind::BroadcastEnv(_) => Slot::BroadcastEnv,
            MacroKind::BootNewEnv(_) => Slot::BootNewEnv,
        }
    }

    /// Kadeploy's name of the kind within its slot (`Kexec`): what [`fmt::Display`] shows.
    pub const fn name(self) -> &'static str {
        match self {
            MacroKind::SetDeploymentEnv(k) => k.name(),
            MacroKind::BroadcastEnv(k) => k.name(),
            MacroKind::BootNewEnv(k) => k.name(),
        }
    }

    /// Kadeploy's name of the implementation (`SetDeploymentEnvKexec`).
    pub const fn instance_name(self) -> &'static str {
        match self {
            MacroKind::SetDeploymentEnv(k) => k.instance_name(),
            MacroKind::BroadcastEnv(k) => k.instance_name(),
            MacroKind::BootNewEnv(k) => k.instance_name(),
        }
    }

    /// The implementation called `name` (`BroadcastEnvKascade`), if any.
    pub fn from_instance_name(name: &str) -> Option<MacroKind> {
        Slot::ALL.into_iter().find_map(|slot| {
            name.strip_prefix(slot.name())
                .and_then(|kind| slot.parse_kind(kind))
        })
    }
}

impl fmt::Display for MacroKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_kadeploys_names_and_order() {
        assert_eq!(
            SetDeploymentEnvKind::NAMES,
            [
                "Untrusted",
                "Kexec",
                "UntrustedCustomPreInstall",
                "Prod",
                "Nfsroot",
                "Dummy"
            ]
        );
        assert_eq!(
            BroadcastEnvKind::NAMES,
            [
                "Chain",
                "Tree",
                "Kastafior",
                "Kascade",
                "Bittorrent",
                "Custom",
                "Dummy",
                "Multicast",
                "Swarm",
                "Auto"
            ]
        );
        assert_eq!(
            BootNewEnvKind::NAMES,
            ["Kexec", "Classical", "HardReboot", "PivotRoot", "Dummy"]
        );
        assert_eq!(Slot::BroadcastEnv.kind_names(), BroadcastEnvKind::NAMES);
    }

    #[test]
    fn the_same_word_is_a_different_kind_in_each_slot() {
        let set_env = Slot::SetDeploymentEnv.parse_kind("Kexec");
        let boot = Slot::BootNewEnv.parse_kind("Kexec");
        assert_eq!(set_env, Some(SetDeploymentEnvKind::Kexec.into()));
        assert_eq!(boot, Some(BootNewEnvKind::Kexec.into()));
        assert_ne!(set_env, boot);
        assert_eq!(Slot::BroadcastEnv.parse_kind("Kexec"), None);
        assert_eq!(Slot::BootNewEnv.parse_kind("kexec"), None);
    }

    #[test]
    fn kinds_show_and_parse_their_names() {
        for slot in Slot::ALL {
            for name in slot.kind_names() {
                let kind = slot.parse_kind(name).expect("a kind of the slot");
                assert_eq!(kind.slot(), slot);
                assert_eq!(kind.to_string(), *name);
                assert_eq!(kind.instance_name(), format!("{slot}{name}"));
                assert_eq!(
                    MacroKind::from_instance_name(kind.instance_name()),
                    Some(kind)
                );
            }
        }
        assert_eq!(MacroKind::from_instance_name("BroadcastEnvNope"), None);
        assert_eq!(MacroKind::from_instance_name("Kexec"), None);
        assert_eq!(
            Slot::ALL.map(Slot::index),
            [0, 1, 2],
            "statistics columns follow the deployment order"
        );
    }
}
