//! Per-model OID templates of switched PDUs: which OID and value switch an outlet on, off or through a
//! reboot, and which OID reads its state. `{outlet}` in a template is the outlet number.

use super::ber::Oid;

/// One SET: an OID template and the INTEGER written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetTemplate {
    /// The OID, with `{outlet}`.
    pub oid: String,
    /// The value written.
    pub value: i64,
}

/// How a PDU model switches and reads its outlets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutletModel {
    /// The model's name (`apc`, `raritan`, `eaton`).
    pub name: String,
    /// Switches the outlet on.
    pub on: SetTemplate,
    /// Switches the outlet off.
    pub off: SetTemplate,
    /// Cycles the outlet (off, a delay, on), when the model has such a command; without it a reboot is
    /// an off then an on.
    pub reboot: Option<SetTemplate>,
    /// The OID that reads the outlet's state.
    pub status: String,
    /// The state value meaning on.
    pub status_on: i64,
    /// The state value meaning off.
    pub status_off: i64,
}

fn set(oid: &str, value: i64) -> SetTemplate {
    SetTemplate {
        oid: oid.into(),
        value,
    }
}

impl OutletModel {
    /// APC Switched Rack PDU (PowerNet-MIB `sPDUOutletCtl`): 1 on, 2 off, 3 reboot; reads 1 on, 2 off.
    pub fn apc() -> Self {
        let oid = "1.3.6.1.4.1.318.1.1.4.4.2.1.3.{outlet}";
        OutletModel {
            name: "apc".into(),
            on: set(oid, 1),
            off: set(oid, 2),
            reboot: Some(set(oid, 3)),
            status: oid.into(),
            status_on: 1,
            status_off: 2,
        }
    }

    /// Raritan PX2/PX3 (PDU2-MIB): `switchingOperation` 0 off, 1 on, 2 cycle; the outlet's on/off sensor
    /// (`measurementsOutletSensorState`, sensor type 14) reads 7 on, 8 off.
    pub fn raritan() -> Self {
        let oid = "1.3.6.1.4.1.13742.6.4.1.2.1.2.1.{outlet}";
        OutletModel {
            name: "raritan".into(),
            on: set(oid, 1),
            off: set(oid, 0),
            reboot: Some(set(oid, 2)),
            status: "1.3.6.1.4.1.13742.6.5.4.3.1.3.1.{outlet}.14".into(),
            status_on: 7,
            status_off: 8,
        }
    }

    /// Eaton ePDU (EATON-EPDU-MIB, unit 0): `outletControlOffCmd`, `outletControlOnCmd`,
    /// `outletControlRebootCmd` take a delay (0 = now); `outletControlStatus` reads 1 on, 0 off.
    pub fn eaton() -> Self {
        let base = "1.3.6.1.4.1.534.6.6.7.6.6.1";
        OutletModel {
            name: "eaton".into(),
            on: set(&format!("{base}.4.0.{{outlet}}"), 0),
            off: set(&format!("{base}.3.0.{{outlet}}"), 0),
            reboot: Some(set(&format!("{base}.5.0.{{outlet}}"), 0)),
            status: format!("{base}.2.0.{{outlet}}"),
            status_on: 1,
            status_off: 0,
        }
    }

    /// The built-in model `name` (`apc`, `raritan`, `eaton`).
    pub fn builtin(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "apc" => Some(Self::apc()),
            "raritan" => Some(Self::raritan()),
            "eaton" => Some(Self::eaton()),
            _ => None,
        }
    }

    /// Names of the built-in models.
    pub const BUILTIN: [&'static str; 3] = ["apc", "raritan", "eaton"];

    /// Checks that every template gives a valid OID for outlet 1.
    pub fn validate(&self) -> Result<(), String> {
        let mut templates = vec![&self.on.oid, &self.off.oid, &self.status];
        templates.extend(self.reboot.as_ref().map(|r| &r.oid));
        for t in templates {
            if !t.contains("{outlet}") {
                return Err(format!("OID template {t:?} has no {{outlet}}"));
            }
            if instantiate(t, 1).is_none() {
                return Err(format!("OID template {t:?} is not an OID"));
            }
        }
        Ok(())
    }
}

/// The OID of `template` for `outlet`.
pub fn instantiate(template: &str, outlet: u32) -> Option<Oid> {
    Oid::parse(&template.replace("{outlet}", &outlet.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_valid_and_distinct() {
        for name in OutletModel::BUILTIN {
            let m = OutletModel::builtin(name).unwrap();
            m.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_ne!(m.status_on, m.status_off);
        }
        assert_eq!(
            instantiate(&OutletModel::apc().on.oid, 12)
                .unwrap()
                .to_string(),
            "1.3.6.1.4.1.318.1.1.4.4.2.1.3.12"
        );
        assert!(OutletModel::builtin("cyberpower").is_none());
        let mut bad = OutletModel::apc();
        bad.status = "1.3.x.{outlet}".into();
        assert!(bad.validate().is_err());
    }
}
