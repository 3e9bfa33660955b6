//! What the lab PDU answers to GET, GETNEXT and SET: the system group and, per outlet, the model's status
//! OID (read) and control OIDs (write).

use super::outlets::{Outlet, Switch};
use hal::power::snmp::ber::Oid;
use hal::power::snmp::models::{OutletModel, instantiate};
use hal::power::snmp::pdu::{self, NO_SUCH_OBJECT, Pdu, PduKind, TIMETICKS, Value};
use std::sync::Arc;
use std::time::Instant;

/// error-status noAccess.
const ERR_NO_ACCESS: i64 = 6;

/// The PDU's variables.
pub struct Mib {
    model: OutletModel,
    outlets: Vec<Arc<Outlet>>,
    started: Instant,
    name: String,
    /// Every readable OID, sorted (for GETNEXT).
    readable: Vec<Oid>,
}

/// sysDescr.0, sysObjectID.0, sysUpTime.0, sysName.0
fn system_oid(column: u32) -> Oid {
    Oid(vec![1, 3, 6, 1, 2, 1, 1, column, 0])
}

impl Mib {
    /// The variables of a PDU of `model` with `outlets` (outlet 1 first).
    pub fn new(model: OutletModel, outlets: Vec<Arc<Outlet>>, name: String) -> Mib {
        let mut readable: Vec<Oid> = [1, 2, 3, 5].into_iter().map(system_oid).collect();
        readable.extend((1..=outlets.len() as u32).filter_map(|i| instantiate(&model.status, i)));
        readable.sort();
        readable.dedup();
        Mib {
            model,
            outlets,
            started: Instant::now(),
            name,
            readable,
        }
    }

    fn read(&self, oid: &Oid) -> Option<Value> {
        let system = match oid.0.as_slice() {
            [1, 3, 6, 1, 2, 1, 1, column, 0] => Some(*column),
            _ => None,
        };
        match system {
            Some(1) => {
                return Some(Value::Octets(
                    format!("kalab switched PDU ({} OIDs)", self.model.name).into_bytes(),
                ));
            }
            Some(2) => return Some(Value::Oid(Oid(vec![1, 3, 6, 1, 4, 1, 8072, 3, 2, 10]))),
            Some(3) => {
                let ticks = self.started.elapsed().as_millis() / 10;
                return Some(Value::Unsigned(TIMETICKS, (ticks as u64) & 0xffff_ffff));
            }
            Some(5) => return Some(Value::Octets(self.name.clone().into_bytes())),
            _ => {}
        }
        (1..=self.outlets.len() as u32).find_map(|i| {
            (instantiate(&self.model.status, i).as_ref() == Some(oid)).then(|| {
                let on = self.outlets[i as usize - 1].is_on();
                Value::Integer(if on {
                    self.model.status_on
                } else {
                    self.model.status_off
                })
            })
        })
    }

    /// The outlet and switch a SET of `value` to `oid` asks for: `Err(error-status)` when it is not one.
    fn control(&self, oid: &Oid, value: &Value) -> Result<(usize, Switch), i64> {
        let m = &self.model;
        let mut known = false;
        for i in 1..=self.outlets.len() as u32 {
            let candidates = [(Switch::On, Some(&m.on)), (Switch::Off, Some(&m.off))]
                .into_iter()
                .chain([(Switch::Reboot, m.reboot.as_ref())]);
            for (switch, template) in candidates {
                let Some(t) = template else { continue };
                if instantiate(&t.oid, i).as_ref() != Some(oid) {
                    continue;
                }
                known = true;
                match value {
                    Value::Integer(v) if *v == t.value => return Ok((i as usize - 1, switch)),
                    Value::Integer(_) => {}
                    _ => return Err(pdu::ERR_WRONG_TYPE),
                }
            }
        }
        Err(if known {
            pdu::ERR_WRONG_VALUE
        } else {
            pdu::ERR_NOT_WRITABLE
        })
    }

    /// The Response to a request PDU; `None` for PDUs that are not requests. `can_write` is false for a
    /// read-only community.
    pub fn answer(&self, request: &Pdu, can_write: bool) -> Option<Pdu> {
        let mut response = Pdu {
            kind: PduKind::Response,
            request_id: request.request_id,
            error_status: 0,
            error_index: 0,
            bindings: Vec::with_capacity(request.bindings.len()),
        };
        match request.kind {
            PduKind::Get => {
                for (oid, _) in &request.bindings {
                    let value = self.read(oid).unwrap_or(Value::Exception(NO_SUCH_OBJECT));
                    response.bindings.push((oid.clone(), value));
                }
            }
            PduKind::GetNext => {
                for (oid, _) in &request.bindings {
                    match self.readable.iter().find(|o| *o > oid) {
                        Some(next) => {
                            let value = self.read(next).unwrap_or(Value::Null);
                            response.bindings.push((next.clone(), value));
                        }
                        None => response
                            .bindings
                            .push((oid.clone(), Value::Exception(pdu::END_OF_MIB_VIEW))),
                    }
                }
            }
            PduKind::Set => {
                response.bindings = request.bindings.clone();
                if !can_write {
                    response.error_status = ERR_NO_ACCESS;
                    response.error_index = 1;
                    return Some(response);
                }
                let mut switches = Vec::new();
                for (index, (oid, value)) in request.bindings.iter().enumerate() {
                    match self.control(oid, value) {
                        Ok(s) => switches.push(s),
                        Err(status) => {
                            response.error_status = status;
                            response.error_index = index as i64 + 1;
                            return Some(response);
                        }
                    }
                }
                for (outlet, switch) in switches {
                    tracing::info!(outlet = outlet + 1, ?switch, "PDU outlet switched");
                    self.outlets[outlet].switch(switch);
                }
            }
            PduKind::Response | PduKind::Report => return None,
        }
        Some(response)
    }
}
