//! The web service behind `shiren serve`: one page and a small JSON API that
//! puts the poem writer on the network. Glue only, like ripgrep's `core`:
//! parse the request, call the writer, render the result.
//!
//! ```text
//! GET  /            the page (HTML, CSS and script embedded in the binary)
//! GET  /healthz     {"status":"ok", "model": …, "busy": …}
//! GET  /api/forms   the forms the writer knows
//! POST /api/write   {"acrostic":"春夏秋冬","form":"wujue",…} → poems with per-character tone and rhyme feet
//!                   ({"template":"明月□□□，…"} keeps characters: a rewritten line is a template)
//! POST /api/check   {"text":"床前明月光，…","suggest":true} → marks, rules broken, suggestions
//! ```
//!
//! The model is loaded once and shared behind an `Arc` ([`Poet`]). Writing is
//! CPU work, so it runs on tokio's blocking pool, never on the async threads,
//! and a semaphore bounds how many poems are written at once; a request
//! waits for a permit only within its time limit. Bodies, texts, counts and
//! every number are bounded ([`Limits`]); every bad input gets a 4xx with one
//! line of JSON, `{"error": "..."}`, and a fault inside the writer (even a
//! panic) gets a 500 while the server keeps serving.
//!
//! Not here: TLS, authentication, rate limiting per client. Bind to loopback
//! (the default) or put a reverse proxy in front.

pub mod api;
pub mod poet;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::Semaphore;

pub use api::{ApiError, Limits};
pub use poet::Poet;

/// The page, assembled once: the HTML with its stylesheet and script inlined,
/// so one response carries everything and nothing is fetched from elsewhere.
fn page() -> String {
    include_str!("page.html")
        .replace("/*PAGE_CSS*/", include_str!("page.css"))
        .replace("/*PAGE_JS*/", include_str!("page.js"))
}

/// Everything a request handler needs, shared by all of them.
pub struct Service {
    poet: Arc<dyn Poet>,
    limits: Limits,
    permits: Arc<Semaphore>,
    page: String,
    started: Instant,
    /// Feeds fresh seeds, so two requests in the same nanosecond still differ.
    seed_counter: AtomicU64,
    written: AtomicU64,
}

impl Service {
    pub fn new(poet: Arc<dyn Poet>, limits: Limits) -> Service {
        let permits = Arc::new(Semaphore::new(limits.concurrent.max(1)));
        Service {
            poet,
            limits,
            permits,
            page: page(),
            started: Instant::now(),
            seed_counter: AtomicU64::new(0),
            written: AtomicU64::new(0),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn fresh_seed(&self) -> u64 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let n = self.seed_counter.fetch_add(1, Ordering::Relaxed);
        splitmix64(nanos ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// Checks the request, waits for a permit, writes on the blocking pool.
    /// The whole of it, waiting included, runs under the request's time limit.
    async fn write(self: Arc<Self>, body: &[u8]) -> Result<api::WriteResponse, ApiError> {
        let spec = api::parse_request(body)?.validate(&self.limits, self.fresh_seed())?;
        let start = Instant::now();
        let deadline = start + self.limits.timeout;
        let timeout = self.limits.timeout;
        let work = async {
            let permit = Arc::clone(&self.permits)
                .acquire_owned()
                .await
                .map_err(|_| ApiError::unavailable("the server is shutting down"))?;
            let poet = Arc::clone(&self.poet);
            let spec = spec.clone();
            // The permit moves into the blocking task: if the request times out and is
            // dropped, the permit is held until the writing really stops, so the bound
            // on concurrent generations holds even then.
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                poet.write(&spec, deadline)
            })
            .await
            .map_err(|e| {
                ApiError::internal(if e.is_panic() {
                    "the writer failed on this request (a bug: please report it with the request)"
                } else {
                    "the writer was cancelled"
                })
            })?
        };
        let poems = match tokio::time::timeout(timeout, work).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(ApiError::unavailable(format!(
                    "no poem within the {} ms time limit (the server is busy; try again, or ask for fewer poems)",
                    timeout.as_millis()
                )))
            }
        };
        self.written
            .fetch_add(poems.len() as u64, Ordering::Relaxed);
        Ok(api::WriteResponse {
            poems,
            form: spec.form,
            seed: spec.seed,
            elapsed_ms: start.elapsed().as_secs_f64() * 1e3,
        })
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // One line, whatever the message held.
        let error = self.message.replace(['\n', '\r'], " ");
        let mut resp = (status, Json(api::ErrorBody { error })).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

/// The routes, with the body limit applied to every one of them.
pub fn router(service: Arc<Service>) -> Router {
    let max_body = service.limits.max_body_bytes;
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/api/forms", get(forms))
        .route("/api/write", axum::routing::post(write))
        .route("/api/check", axum::routing::post(check))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(service)
}

async fn index(State(s): State<Arc<Service>>) -> Response {
    let mut resp = axum::response::Html(s.page.clone()).into_response();
    let h = resp.headers_mut();
    // The page loads nothing from anywhere: say so to the browser, which then refuses to.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
             connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    model: String,
    uptime_s: u64,
    poems_written: u64,
    /// Generations running now, and the most allowed at once.
    busy: usize,
    concurrent: usize,
}

async fn healthz(State(s): State<Arc<Service>>) -> Json<Health> {
    let concurrent = s.limits.concurrent.max(1);
    Json(Health {
        status: "ok",
        model: s.poet.describe(),
        uptime_s: s.started.elapsed().as_secs(),
        poems_written: s.written.load(Ordering::Relaxed),
        busy: concurrent.saturating_sub(s.permits.available_permits()),
        concurrent,
    })
}

async fn forms() -> Json<api::FormsResponse> {
    Json(api::FormsResponse::all())
}

async fn write(
    State(s): State<Arc<Service>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<api::WriteResponse>, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError {
                status: 413,
                message: format!(
                    "request body is larger than {} bytes",
                    s.limits.max_body_bytes
                ),
            }
        } else {
            ApiError::malformed(format!("could not read the request body: {e}"))
        }
    })?;
    Ok(Json(s.write(&body).await?))
}

/// `POST /api/check`: checking is quick (suggestions are one model pass per
/// poem), so it runs on the blocking pool under the same permits and time
/// limit as writing.
async fn check(
    State(s): State<Arc<Service>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<api::CheckResponse>, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError {
                status: 413,
                message: format!(
                    "request body is larger than {} bytes",
                    s.limits.max_body_bytes
                ),
            }
        } else {
            ApiError::malformed(format!("could not read the request body: {e}"))
        }
    })?;
    let spec = api::parse_check(&body)?.validate(&s.limits)?;
    let timeout = s.limits.timeout;
    let work = async {
        let permit = Arc::clone(&s.permits)
            .acquire_owned()
            .await
            .map_err(|_| ApiError::unavailable("the server is shutting down"))?;
        let poet = Arc::clone(&s.poet);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            poet.check(&spec)
        })
        .await
        .map_err(|_| {
            ApiError::internal(
                "the checker failed on this request (a bug: please report it with the request)",
            )
        })?
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => Ok(Json(r?)),
        Err(_) => Err(ApiError::unavailable(format!(
            "no answer within the {} ms time limit (the server is busy; try again)",
            timeout.as_millis()
        ))),
    }
}

async fn not_found() -> ApiError {
    ApiError {
        status: 404,
        message: "no such page (try GET /, GET /api/forms, POST /api/write or POST /api/check)"
            .into(),
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError {
        status: 405,
        message: "method not allowed (GET /, /healthz, /api/forms; POST /api/write, /api/check)"
            .into(),
    }
}

/// Serves on `listener` until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(service))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A server running on its own thread and runtime; for tests and embedding.
/// Dropping it (or calling [`Running::stop`]) shuts it down and waits.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// Binds `addr` (port 0 picks a free one), then serves on a new thread.
    pub fn start(service: Service, addr: SocketAddr) -> std::io::Result<Running> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let listener = rt.block_on(tokio::net::TcpListener::bind(addr))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let service = Arc::new(service);
        let thread = std::thread::Builder::new()
            .name("shiren-serve".into())
            .spawn(move || {
                rt.block_on(serve(listener, service, async {
                    let _ = stopped.await;
                }))
            })?;
        Ok(Running {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops accepting, waits for requests in flight, and returns the server's outcome.
    pub fn stop(mut self) -> std::io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the server thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
