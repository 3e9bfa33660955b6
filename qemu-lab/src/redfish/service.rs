//! The Redfish resources of one lab VM: the service root, the Systems collection with the VM's
//! ComputerSystem (`PowerState`, `Boot`, `#ComputerSystem.Reset`) and the SessionService.

use super::machine::Machine;
use super::sessions::Sessions;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hal::power::redfish::{BootTarget, ResetType};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// Largest request body accepted.
const MAX_REQUEST: usize = 16 * 1024;
/// A declared body over [`MAX_REQUEST`] but at most this is read and dropped before the 413 answer, so
/// that closing the connection does not reset it under the answer (the client then never reads it).
const DRAIN_LIMIT: usize = 1024 * 1024;
/// How long such a body may take to arrive.
const DRAIN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// `Boot.BootSourceOverrideEnabled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OverrideEnabled {
    Disabled,
    Once,
    Continuous,
}

impl OverrideEnabled {
    fn as_str(self) -> &'static str {
        match self {
            OverrideEnabled::Disabled => "Disabled",
            OverrideEnabled::Once => "Once",
            OverrideEnabled::Continuous => "Continuous",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Disabled, Self::Once, Self::Continuous]
            .into_iter()
            .find(|e| e.as_str() == s)
    }
}

/// The service's state.
pub struct Service {
    /// The system's id (the VM's name).
    pub id: String,
    machine: Machine,
    sessions: Mutex<Sessions>,
    boot: Mutex<(OverrideEnabled, BootTarget)>,
    /// One reset at a time.
    busy: tokio::sync::Mutex<()>,
}

impl Service {
    /// The service of `machine`, named `id`, with one account.
    pub fn new(id: &str, machine: Machine, user: &str, password: &str) -> Arc<Service> {
        Arc::new(Service {
            id: id.into(),
            machine,
            sessions: Mutex::new(Sessions::new(user, password)),
            boot: Mutex::new((OverrideEnabled::Disabled, BootTarget::None)),
            busy: tokio::sync::Mutex::new(()),
        })
    }

    fn system_path(&self) -> String {
        format!("/redfish/v1/Systems/{}", self.id)
    }

    /// The refusal of a request on system `id`, if any: bad credentials, or not this service's system.
    fn refusal(&self, id: &str, headers: &HeaderMap) -> Option<Response> {
        if !self.authorized(headers) {
            return Some(unauthorized());
        }
        (id != self.id).then(|| {
            error(
                StatusCode::NOT_FOUND,
                "ResourceMissingAtURI",
                "no such system",
            )
        })
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Ok(mut sessions) = self.sessions.lock() else {
            return false;
        };
        if let Some(token) = headers.get("X-Auth-Token").and_then(|v| v.to_str().ok()) {
            return sessions.token_valid(token);
        }
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| sessions.basic_matches(v))
    }

    /// The boot order the next boot takes (network first or not), consuming a `Once` override.
    fn take_boot_order(&self) -> Option<bool> {
        let Ok(mut boot) = self.boot.lock() else {
            return None;
        };
        let order = match boot.1 {
            BootTarget::Pxe | BootTarget::UefiHttp => Some(true),
            BootTarget::Hdd => Some(false),
            BootTarget::None => None,
        };
        match boot.0 {
            OverrideEnabled::Disabled => None,
            OverrideEnabled::Continuous => order,
            OverrideEnabled::Once => {
                *boot = (OverrideEnabled::Disabled, BootTarget::None);
                order
            }
        }
    }
}

/// A Redfish error body.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {
        "code": format!("Base.1.0.{code}"),
        "message": message,
        "@Message.ExtendedInfo": [{"MessageId": format!("Base.1.0.{code}"), "Message": message}],
    }});
    json_response(status, &body)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn unauthorized() -> Response {
    let mut r = error(
        StatusCode::UNAUTHORIZED,
        "NoValidSession",
        "authentication required",
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"kalab-redfish\""),
    );
    r
}

/// The router of `service`.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route(
            "/redfish",
            get(|| async { json_response(StatusCode::OK, &json!({"v1": "/redfish/v1/"})) }),
        )
        .route("/redfish/v1", get(root))
        .route("/redfish/v1/", get(root))
        .route("/redfish/v1/Systems", get(systems))
        .route("/redfish/v1/Systems/{id}", get(system).patch(patch_system))
        .route(
            "/redfish/v1/Systems/{id}/Actions/ComputerSystem.Reset",
            post(reset),
        )
        .route("/redfish/v1/SessionService", get(session_service))
        .route(
            "/redfish/v1/SessionService/Sessions",
            get(list_sessions).post(create_session),
        )
        .route(
            "/redfish/v1/SessionService/Sessions/{sid}",
            get(show_session).delete(delete_session),
        )
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "ResourceMissingAtURI",
                "no such resource",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_REQUEST))
        .layer(axum::middleware::from_fn(refuse_large_bodies))
        .with_state(service)
}

/// Answers 413 to a request declaring a body over [`MAX_REQUEST`], after reading and dropping it when
/// it is at most [`DRAIN_LIMIT`] and arrives within [`DRAIN_WAIT`]; other requests go on.
async fn refuse_large_bodies(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match declared {
        Some(n) if n > MAX_REQUEST => {
            if n <= DRAIN_LIMIT {
                let body = axum::body::to_bytes(request.into_body(), DRAIN_LIMIT);
                let _ = tokio::time::timeout(DRAIN_WAIT, body).await;
            }
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestTooLarge",
                "the request body is over 16 KiB",
            )
        }
        _ => next.run(request).await,
    }
}

async fn root() -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "@odata.id": "/redfish/v1/",
            "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot",
            "Id": "RootService",
            "Name": "kalab Redfish service",
            "RedfishVersion": "1.6.0",
            "Systems": {"@odata.id": "/redfish/v1/Systems"},
            "SessionService": {"@odata.id": "/redfish/v1/SessionService"},
            "Links": {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}},
        }),
    )
}

async fn systems(State(s): State<Arc<Service>>, headers: HeaderMap) -> Response {
    if !s.authorized(&headers) {
        return unauthorized();
    }
    json_response(
        StatusCode::OK,
        &json!({
            "@odata.id": "/redfish/v1/Systems",
            "@odata.type": "#ComputerSystemCollection.ComputerSystemCollection",
            "Name": "Computer System Collection",
            "Members@odata.count": 1,
            "Members": [{"@odata.id": s.system_path()}],
        }),
    )
}

fn system_body(s: &Service) -> Value {
    let (enabled, target) = s
        .boot
        .lock()
        .map(|b| *b)
        .unwrap_or((OverrideEnabled::Disabled, BootTarget::None));
    let path = s.system_path();
    json!({
        "@odata.id": path,
        "@odata.type": "#ComputerSystem.v1_10_0.ComputerSystem",
        "Id": s.id,
        "Name": s.id,
        "SystemType": "Virtual",
        "PowerState": if s.machine.is_on() { "On" } else { "Off" },
        "Boot": {
            "BootSourceOverrideEnabled": enabled.as_str(),
            "BootSourceOverrideTarget": target.as_str(),
            "BootSourceOverrideTarget@Redfish.AllowableValues": ["None", "Pxe", "Hdd", "UefiHttp"],
        },
        "Actions": {"#ComputerSystem.Reset": {
            "target": format!("{path}/Actions/ComputerSystem.Reset"),
            "ResetType@Redfish.AllowableValues": ResetType::ALL.map(ResetType::as_str),
        }},
    })
}

async fn system(
    State(s): State<Arc<Service>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(answer) = s.refusal(&id, &headers) {
        return answer;
    }
    json_response(StatusCode::OK, &system_body(&s))
}

/// Parses a JSON object body.
fn object(body: &Bytes) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// The answer to a body that is not a JSON object.
fn malformed() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "MalformedJSON",
        "the body is not a JSON object",
    )
}

async fn patch_system(
    State(s): State<Arc<Service>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(answer) = s.refusal(&id, &headers) {
        return answer;
    }
    let Some(map) = object(&body) else {
        return malformed();
    };
    let Some(boot) = map.get("Boot").and_then(Value::as_object) else {
        return error(
            StatusCode::BAD_REQUEST,
            "PropertyUnknown",
            "only Boot can be changed",
        );
    };
    let Ok(mut current) = s.boot.lock() else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "GeneralError",
            "state lost",
        );
    };
    let mut next = *current;
    match (
        boot_property(boot, "BootSourceOverrideEnabled", OverrideEnabled::parse),
        boot_property(boot, "BootSourceOverrideTarget", BootTarget::parse),
    ) {
        (Ok(enabled), Ok(target)) => {
            next.0 = enabled.unwrap_or(next.0);
            next.1 = target.unwrap_or(next.1);
        }
        (Err(key), _) | (_, Err(key)) => {
            return error(StatusCode::BAD_REQUEST, "PropertyValueNotInList", key);
        }
    }
    tracing::info!(
        enabled = next.0.as_str(),
        target = next.1.as_str(),
        "boot override"
    );
    *current = next;
    drop(current);
    json_response(StatusCode::OK, &system_body(&s))
}

/// The `Boot` property `key` parsed by `parse`: absent is `None`; a value out of its list is `key`,
/// refused.
fn boot_property<'k, T>(
    boot: &serde_json::Map<String, Value>,
    key: &'k str,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>, &'k str> {
    boot.get(key)
        .map(|v| v.as_str().and_then(parse).ok_or(key))
        .transpose()
}

async fn reset(
    State(s): State<Arc<Service>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(answer) = s.refusal(&id, &headers) {
        return answer;
    }
    let Some(map) = object(&body) else {
        return malformed();
    };
    let Some(reset) = map
        .get("ResetType")
        .and_then(Value::as_str)
        .and_then(ResetType::parse)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "ActionParameterNotSupported",
            "ResetType",
        );
    };
    let _turn = s.busy.lock().await;
    tracing::info!(reset = reset.as_str(), "ComputerSystem.Reset");
    let m = &s.machine;
    let result = match reset {
        ResetType::On if m.is_on() => Ok(()),
        ResetType::On => m.power_on(s.take_boot_order()).await,
        ResetType::ForceOff => m.force_off().await,
        ResetType::GracefulShutdown => m.graceful_shutdown().await,
        ResetType::ForceRestart => m.force_restart(s.take_boot_order()).await,
        ResetType::PowerCycle => m.power_cycle(s.take_boot_order()).await,
    };
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "GeneralError",
            &e.to_string(),
        ),
    }
}

async fn session_service(State(s): State<Arc<Service>>, headers: HeaderMap) -> Response {
    if !s.authorized(&headers) {
        return unauthorized();
    }
    json_response(
        StatusCode::OK,
        &json!({
            "@odata.id": "/redfish/v1/SessionService",
            "@odata.type": "#SessionService.v1_1_0.SessionService",
            "ServiceEnabled": true,
            "SessionTimeout": super::sessions::SESSION_TIMEOUT.as_secs(),
            "Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"},
        }),
    )
}

async fn list_sessions(State(s): State<Arc<Service>>, headers: HeaderMap) -> Response {
    if !s.authorized(&headers) {
        return unauthorized();
    }
    let ids = s.sessions.lock().map(|mut x| x.ids()).unwrap_or_default();
    let members: Vec<Value> = ids
        .iter()
        .map(|id| json!({"@odata.id": format!("/redfish/v1/SessionService/Sessions/{id}")}))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"@odata.id": "/redfish/v1/SessionService/Sessions", "Members@odata.count": members.len(), "Members": members}),
    )
}

async fn create_session(State(s): State<Arc<Service>>, body: Bytes) -> Response {
    let Some(map) = object(&body) else {
        return malformed();
    };
    let field = |k: &str| map.get(k).and_then(Value::as_str).unwrap_or("");
    let Ok(mut sessions) = s.sessions.lock() else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "GeneralError",
            "state lost",
        );
    };
    if !sessions.credentials_match(field("UserName"), field("Password")) {
        return unauthorized();
    }
    let (id, token) = sessions.open();
    drop(sessions);
    let location = format!("/redfish/v1/SessionService/Sessions/{id}");
    let body = json!({"@odata.id": location, "Id": id.to_string(), "UserName": field("UserName")});
    let mut response = json_response(StatusCode::CREATED, &body);
    let headers = response.headers_mut();
    if let (Ok(t), Ok(l)) = (
        HeaderValue::from_str(&token),
        HeaderValue::from_str(&location),
    ) {
        headers.insert("X-Auth-Token", t);
        headers.insert(header::LOCATION, l);
    }
    response
}

async fn show_session(
    State(s): State<Arc<Service>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !s.authorized(&headers) {
        return unauthorized();
    }
    let ids = s.sessions.lock().map(|mut x| x.ids()).unwrap_or_default();
    match sid.parse::<u64>().ok().filter(|id| ids.contains(id)) {
        Some(id) => json_response(
            StatusCode::OK,
            &json!({"@odata.id": format!("/redfish/v1/SessionService/Sessions/{id}"), "Id": id.to_string()}),
        ),
        None => error(
            StatusCode::NOT_FOUND,
            "ResourceMissingAtURI",
            "no such session",
        ),
    }
}

async fn delete_session(
    State(s): State<Arc<Service>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !s.authorized(&headers) {
        return unauthorized();
    }
    let closed = sid
        .parse::<u64>()
        .ok()
        .is_some_and(|id| s.sessions.lock().is_ok_and(|mut x| x.close(id)));
    if closed {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            "ResourceMissingAtURI",
            "no such session",
        )
    }
}
