//! The lab BMC's system boot options (Get/Set System Boot Options): the boot flags that
//! `ipmitool chassis bootdev` writes, with the parameters around them (set in progress, boot flag valid
//! bit clearing, boot info acknowledge). One-time flags are consumed by the next boot the BMC starts and
//! expire after 60 s otherwise, as the IPMI specification asks. The VM's own boot order comes back at the
//! next boot the BMC starts or 60 s after the flags were set or used, whichever is first: QEMU hands the
//! order to the firmware only when the firmware reads it, some time after a reset.

use hal::power::ipmi::bootdev::*;
use hal::power::ipmi::commands::{CC_BAD_LENGTH, CC_INVALID_DATA, CC_OK};
use std::time::{Duration, Instant};

/// Completion code: parameter not supported.
pub const CC_PARAM_NOT_SUPPORTED: u8 = 0x80;
/// One-time boot flags nobody consumed are cleared after this long.
pub const VALID_FOR: Duration = Duration::from_secs(60);

/// Boot option parameter 3: boot flag valid bit clearing.
const PARAM_VALID_BIT_CLEARING: u8 = 3;

/// The boot options of one BMC.
#[derive(Debug, Default)]
pub struct BootOptions {
    /// The boot flags (parameter 5).
    pub flags: BootFlags,
    /// Bumped at every write of the flags, so a late expiry does not clear newer flags.
    pub generation: u64,
    /// When the flags were last written or used by a boot.
    pub since: Option<Instant>,
    /// A one-time override was used: the VM's own order is due back.
    pub restore_pending: bool,
    set_in_progress: u8,
    valid_bit_clearing: u8,
    info_ack: u8,
}

impl BootOptions {
    /// Set System Boot Options: a completion code, and whether the boot flags changed.
    pub fn set(&mut self, data: &[u8]) -> (u8, bool) {
        let Some((&param, value)) = data.split_first() else {
            return (CC_BAD_LENGTH, false);
        };
        match (param & 0x7f, value) {
            (PARAM_SET_IN_PROGRESS, [progress]) => {
                self.set_in_progress = progress & 0x03;
                (CC_OK, false)
            }
            (PARAM_VALID_BIT_CLEARING, [bits]) => {
                self.valid_bit_clearing = bits & 0x1f;
                (CC_OK, false)
            }
            (PARAM_BOOT_INFO_ACK, [mask, bits]) => {
                self.info_ack = (self.info_ack & !mask) | (bits & mask);
                (CC_OK, false)
            }
            (PARAM_BOOT_FLAGS, [_, _, _, _, _]) => match BootFlags::decode(value) {
                Ok(flags) => {
                    self.flags = flags;
                    self.generation += 1;
                    self.since = Some(Instant::now());
                    (CC_OK, true)
                }
                Err(_) => (CC_INVALID_DATA, false),
            },
            (
                PARAM_SET_IN_PROGRESS
                | PARAM_VALID_BIT_CLEARING
                | PARAM_BOOT_INFO_ACK
                | PARAM_BOOT_FLAGS,
                _,
            ) => (CC_BAD_LENGTH, false),
            _ => (CC_PARAM_NOT_SUPPORTED, false),
        }
    }

    /// Get System Boot Options: a completion code and the response data.
    pub fn get(&self, data: &[u8]) -> (u8, Vec<u8>) {
        let Some(&param) = data.first() else {
            return (CC_BAD_LENGTH, Vec::new());
        };
        let param = param & 0x7f;
        let value: Vec<u8> = match param {
            PARAM_SET_IN_PROGRESS => vec![self.set_in_progress],
            PARAM_VALID_BIT_CLEARING => vec![self.valid_bit_clearing],
            PARAM_BOOT_INFO_ACK => vec![0x00, self.info_ack],
            PARAM_BOOT_FLAGS => self.flags.encode().to_vec(),
            _ => return (CC_PARAM_NOT_SUPPORTED, Vec::new()),
        };
        let mut out = vec![PARAM_VERSION, param];
        out.extend(value);
        (CC_OK, out)
    }

    /// A boot the BMC started used the flags: one-time flags are no longer valid, and the VM's own
    /// order is due back.
    pub fn consumed(&mut self) {
        if !self.flags.persistent {
            self.flags.valid = false;
            self.restore_pending = true;
            self.since = Some(Instant::now());
        }
    }

    /// True (once) when a used one-time override's order is still in place.
    pub fn take_restore(&mut self) -> bool {
        std::mem::take(&mut self.restore_pending)
    }

    /// Ends one-time flags of `generation` written or used at least [`VALID_FOR`] ago; true when the
    /// VM's own order is due back.
    pub fn expire(&mut self, generation: u64, now: Instant) -> bool {
        let old = self
            .since
            .is_some_and(|t| now.duration_since(t) >= VALID_FOR);
        let one_time = (self.flags.valid || self.restore_pending) && !self.flags.persistent;
        if generation == self.generation && old && one_time {
            self.flags.valid = false;
            self.restore_pending = false;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipmitool_bootdev_sequence_sets_the_flags_and_bootparam_reads_them() {
        let mut b = BootOptions::default();
        // set in progress, clear the BIOS ack, the flags, commit, complete.
        assert_eq!(b.set(&[0, 1]), (CC_OK, false));
        assert_eq!(b.set(&[4, 1, 1]), (CC_OK, false));
        assert_eq!(b.set(&[5, 0xe0, 0x08, 0, 0, 0]), (CC_OK, true));
        assert_eq!(b.set(&[0, 2]), (CC_OK, false));
        assert_eq!(b.set(&[0, 0]), (CC_OK, false));
        assert_eq!(b.get(&[5, 0, 0]), (CC_OK, vec![1, 5, 0xe0, 0x08, 0, 0, 0]));
        assert_eq!(b.get(&[4, 0, 0]), (CC_OK, vec![1, 4, 0, 1]));
        assert!(b.flags.persistent && b.flags.efi && b.flags.device == BootDevice::Disk);
        // Persistent flags survive a boot; one-time flags do not, and the own order is due back once.
        b.consumed();
        assert!(b.flags.valid && !b.take_restore());
        assert_eq!(b.set(&[5, 0x80, 0x04, 0, 0, 0]), (CC_OK, true));
        b.consumed();
        assert_eq!(b.flags.effective(), BootDevice::None);
        assert!(b.take_restore() && !b.take_restore());
    }

    #[test]
    fn malformed_requests_get_completion_codes() {
        let mut b = BootOptions::default();
        assert_eq!(b.set(&[]), (CC_BAD_LENGTH, false));
        assert_eq!(b.set(&[5, 0x80]), (CC_BAD_LENGTH, false));
        assert_eq!(b.set(&[5, 0x80, 0x24, 0, 0, 0]), (CC_INVALID_DATA, false));
        assert_eq!(b.set(&[0x60, 1]), (CC_PARAM_NOT_SUPPORTED, false));
        assert_eq!(b.get(&[]).0, CC_BAD_LENGTH);
        assert_eq!(b.get(&[7, 0, 0]).0, CC_PARAM_NOT_SUPPORTED);
        assert_eq!(b.flags, BootFlags::default());
    }

    #[test]
    fn one_time_flags_expire_and_later_writes_are_kept() {
        let mut b = BootOptions::default();
        b.set(&[5, 0x80, 0x08, 0, 0, 0]);
        let first = b.generation;
        let written = b.since.unwrap();
        assert!(!b.expire(first, written + Duration::from_secs(1)));
        b.set(&[5, 0x80, 0x04, 0, 0, 0]);
        // The first write's expiry does not clear the second.
        assert!(!b.expire(first, written + VALID_FOR * 2));
        assert!(b.expire(b.generation, b.since.unwrap() + VALID_FOR));
        assert!(!b.flags.valid);
        // Used flags: the own order is due back 60 s after the boot.
        b.set(&[5, 0x80, 0x08, 0, 0, 0]);
        b.consumed();
        let used = b.since.unwrap();
        assert!(!b.expire(b.generation, used + Duration::from_secs(59)));
        assert!(b.expire(b.generation, used + VALID_FOR));
        assert!(!b.take_restore());
    }
}
