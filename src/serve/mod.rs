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
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
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

/// The page with the writer's ci tunes added to its form list.
fn with_tunes(page: String, tunes: &[String]) -> String {
    if tunes.is_empty() {
        return page.replace("<!--TUNES-->", "");
    }
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut html = String::from("<optgroup label=\"词牌\">");
    for t in tunes {
        let t = escape(t);
        html.push_str(&format!("<option value=\"{t}\">{t}</option>"));
    }
    html.push_str("</optgroup>");
    page.replace("<!--TUNES-->", &html)
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
        let page = with_tunes(page(), &poet.tunes());
        Service {
            poet,
            limits,
            permits,
            page,
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

/// The routes, with the body limit, the Host check (for a server bound to
/// `addr`) and the security headers applied to every one of them.
pub fn router(service: Arc<Service>, addr: SocketAddr) -> Router {
    let max_body = service.limits.max_body_bytes;
    let hosts = Arc::new(HostRule {
        addr,
        allow: service.limits.allow_hosts.clone(),
    });
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/api/forms", get(forms))
        .route("/api/write", axum::routing::post(write))
        .route("/api/check", axum::routing::post(check))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(hosts, guard))
        .with_state(service)
}

/// Which Host headers the server answers: its own address, `localhost` when
/// it is bound to loopback, any IP address when bound to all interfaces, and
/// the names given with `--allow-host`. A DNS-rebinding page reaches the
/// server under its own domain name, which matches none of these.
pub struct HostRule {
    pub addr: SocketAddr,
    pub allow: Vec<String>,
}

impl HostRule {
    pub fn allows(&self, host: &str) -> bool {
        // strip the port: `name:8080`, `[::1]:8080`
        let name = match host.rsplit_once(':') {
            Some((n, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !n.ends_with(':') => n,
            _ => host,
        };
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let ip = self.addr.ip();
        if self
            .allow
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(name))
        {
            return true;
        }
        match name.parse::<std::net::IpAddr>() {
            Ok(asked) => ip.is_unspecified() || asked == ip,
            Err(_) => {
                (ip.is_loopback() || ip.is_unspecified()) && name.eq_ignore_ascii_case("localhost")
            }
        }
    }
}

/// Checks the Host, then adds the headers every response carries: no MIME
/// sniffing, no framing by other sites, no referrer sent elsewhere.
async fn guard(State(hosts): State<Arc<HostRule>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    // The API takes JSON only: a cross-site form or `text/plain` POST, which a
    // browser sends without asking, cannot start any work.
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mime = ctype.split(';').next().unwrap_or("").trim();
    let json_needed = req.method() == axum::http::Method::POST
        && req.uri().path().starts_with("/api/")
        && !mime.eq_ignore_ascii_case("application/json");
    let mut resp = match host {
        Some(h) if hosts.allows(&h) && json_needed => ApiError {
            status: 415,
            message: format!(
                "content-type must be application/json, got `{}`",
                api::clip(&ctype, 40)
            ),
        }
        .into_response(),
        Some(h) if hosts.allows(&h) => next.run(req).await,
        Some(h) => ApiError {
            status: 421,
            message: format!(
                "this server does not answer to host `{}` (start it with --allow-host {} to serve under that name)",
                api::clip(&h, 60),
                api::clip(h.split(':').next().unwrap_or(""), 60)
            ),
        }
        .into_response(),
        None => ApiError::malformed("no Host header").into_response(),
    };
    let h = resp.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    resp
}

async fn index(State(s): State<Arc<Service>>) -> Response {
    let mut resp = axum::response::Html(s.page.clone()).into_response();
    let h = resp.headers_mut();
    // The page loads nothing from anywhere: say so to the browser, which then refuses to.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
             connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'",
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
    req: Request,
) -> Result<Json<api::WriteResponse>, ApiError> {
    let body = read_body(&s, req).await?;
    Ok(Json(s.write(&body).await?))
}

/// The request body, at most `max_body_bytes`, arriving within `body_timeout`
/// (408 past it, 413 when too large): every POST reads its body here.
async fn read_body(s: &Service, req: Request) -> Result<Bytes, ApiError> {
    let max = s.limits.max_body_bytes;
    let read = axum::body::to_bytes(req.into_body(), max);
    let body = match tokio::time::timeout(s.limits.body_timeout, read).await {
        Err(_) => {
            return Err(ApiError {
                status: 408,
                message: format!(
                    "the request body did not arrive within {} ms",
                    s.limits.body_timeout.as_millis()
                ),
            })
        }
        Ok(Err(e)) => {
            let mut causes =
                std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |c| {
                    c.source()
                });
            let too_large = causes.any(|c| c.to_string().contains("length limit"));
            return Err(if too_large {
                ApiError {
                    status: 413,
                    message: format!("request body is larger than {max} bytes"),
                }
            } else {
                ApiError::malformed(format!("could not read the request body: {e}"))
            });
        }
        Ok(Ok(b)) => b,
    };
    Ok(body)
}

/// `POST /api/check`: checking is quick (suggestions are one model pass per
/// poem), so it runs on the blocking pool under the same permits and time
/// limit as writing.
async fn check(
    State(s): State<Arc<Service>>,
    req: Request,
) -> Result<Json<api::CheckResponse>, ApiError> {
    let body = read_body(&s, req).await?;
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
///
/// The accept loop is hyper's HTTP/1 connection with a timer, rather than
/// `axum::serve`, for what that lacks: a client has `header_timeout` to send
/// each request's headers (a connection sending half a header, or nothing,
/// is closed, not held open forever), and at most `max_connections` are
/// open at once (the rest wait in the kernel's accept queue).
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = service.limits.clone();
    let app = router(service, listener.local_addr()?);
    let most = limits.max_connections.max(1);
    let open = Arc::new(Semaphore::new(most));
    let (closing, closed) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&open).acquire_owned() => p.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                // out of file descriptors and the like: wait, as axum::serve does
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut closed = closed.clone();
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                // the only change is to `true` (or the loop's end dropping the sender)
                _ = closed.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    let _ = closing.send(true);
    // every connection has returned its permit once it has finished
    let _ = open.acquire_many(most as u32).await;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_temperature_starts_at_writes_default() {
        let p = page();
        let at = p
            .find("id=\"temperature\"")
            .expect("the temperature slider");
        let value = p[at..].split("value=\"").nth(1).unwrap();
        let value: f32 = value[..value.find('"').unwrap()].parse().unwrap();
        assert_eq!(value, crate::write::Options::default().temperature);
    }

    #[test]
    fn the_page_lists_the_tunes_in_the_form_select_escaped() {
        let p = with_tunes(page(), &["浣溪沙".into(), "a\"<b>".into()]);
        let form = &p[p.find("<select id=\"form\">").unwrap()..];
        let form = &form[..form.find("</select>").unwrap()];
        assert!(
            form.contains("<optgroup label=\"词牌\"><option value=\"浣溪沙\">浣溪沙</option>"),
            "{form}"
        );
        assert!(form.contains("a&quot;&lt;b&gt;") && !form.contains("<b>"));
        let plain = with_tunes(page(), &[]);
        assert!(!plain.contains("词牌") && !plain.contains("<!--TUNES-->"));
    }
}
