//! Serving the API over TCP with limits that no client can get around.
//!
//! Each limit answers one way a hostile or broken client could tie up a node:
//!
//! | limit | against | answer |
//! |---|---|---|
//! | connections ([`ServeConfig::max_connections`]) | opening sockets and leaving them idle | not accepted until one closes |
//! | header timeout | sending headers a byte at a time, or idling on keep-alive | connection closed |
//! | body timeout | sending a body a byte at a time | 408 |
//! | request timeout | a request that never finishes (longer than the longest `wait`) | 408 |
//! | requests in progress ([`ServeConfig::max_in_flight`]) | many slow requests at once | 503 `overloaded` |
//! | per client address ([`ServeConfig::rate_per_second`], burst) | one address flooding | 429 `rate_limited` with `Retry-After` |
//!
//! The API runs on its own threads (see [`crate::run`]), so that even a flood within these
//! limits competes with consensus only for CPU, never for the runtime's threads.

use super::{ApiError, ErrorBody};
use axum::{
    Json, Router,
    error_handling::HandleErrorLayer,
    extract::ConnectInfo,
    http::{HeaderValue, StatusCode, header::RETRY_AFTER},
    response::{IntoResponse, Response},
};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use std::{
    num::{NonZeroU32, NonZeroUsize},
    sync::Arc,
    time::Duration,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tower::{BoxError, ServiceBuilder, ServiceExt as _};
use tower_governor::{GovernorError, GovernorLayer, governor::GovernorConfigBuilder};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tracing::{debug, warn};

/// Limits of the API server. Every field has a default (see [`ServeConfig::default`]).
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Most open client connections (default 1024). Past it, new connections wait in the
    /// kernel's accept queue.
    pub max_connections: NonZeroUsize,
    /// Longest a connection may take to send a request's headers, or stay idle between
    /// requests (default 10 s).
    pub header_timeout: Duration,
    /// Longest a client may take to send a request body (default 30 s).
    pub body_timeout: Duration,
    /// Longest any request may take (default 75 s: above the longest commit wait).
    pub request_timeout: Duration,
    /// Most requests handled at once; more get 503 at once (default 256).
    pub max_in_flight: NonZeroUsize,
    /// Requests per second allowed from one client address, sustained (default 200).
    pub rate_per_second: NonZeroU32,
    /// Requests one client address may send in a burst above its rate (default 400).
    pub rate_burst: NonZeroU32,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            max_connections: NonZeroUsize::new(1024).expect("nonzero"),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            request_timeout: super::MAX_WAIT + Duration::from_secs(15),
            max_in_flight: NonZeroUsize::new(256).expect("nonzero"),
            rate_per_second: NonZeroU32::new(200).expect("nonzero"),
            rate_burst: NonZeroU32::new(400).expect("nonzero"),
        }
    }
}

impl ServeConfig {
    /// Checks the limits make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.request_timeout <= super::MAX_WAIT {
            return Err(format!(
                "request timeout {:?} must exceed the longest commit wait {:?}",
                self.request_timeout,
                super::MAX_WAIT
            ));
        }
        if self.header_timeout.is_zero() || self.body_timeout.is_zero() {
            return Err("header and body timeouts must be positive".into());
        }
        Ok(())
    }
}

fn error_response(error: ApiError) -> Response {
    (
        error.status,
        Json(ErrorBody {
            error: error.detail(),
        }),
    )
        .into_response()
}

async fn overloaded(error: BoxError) -> Response {
    if error.is::<tower::load_shed::error::Overloaded>() {
        error_response(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the node is handling as many requests as it allows; retry shortly",
        ))
    } else {
        error_response(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("request failed: {error}"),
        ))
    }
}

fn rate_limited(error: GovernorError) -> Response {
    match error {
        GovernorError::TooManyRequests { wait_time, .. } => {
            let wait = wait_time.max(1);
            let mut response = error_response(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests from this address; retry in {wait} s"),
            ));
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(wait));
            response
        }
        other => error_response(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            other.to_string(),
        )),
    }
}

/// Wraps `router` in the request limits of `config` (everything but the connection ones).
pub fn limited(router: Router, config: &ServeConfig) -> Router {
    let period = Duration::from_secs(1) / config.rate_per_second.get();
    let governor = GovernorConfigBuilder::default()
        .period(period.max(Duration::from_nanos(1)))
        .burst_size(config.rate_burst.get())
        .finish()
        .expect("period and burst are nonzero");
    let limiter = governor.limiter().clone();
    // The limiter keeps a slot per client address: forget the idle ones now and then, so
    // the map stays as small as the set of recently active clients.
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    });
    router
        .layer(RequestBodyTimeoutLayer::new(config.body_timeout))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .concurrency_limit(config.max_in_flight.get()),
        )
        .layer(GovernorLayer::new(Arc::new(governor)).error_handler(rate_limited))
}

/// Serves `router` on `listener` until the process stops: at most
/// [`ServeConfig::max_connections`] connections, each with the header timeout. Must run
/// inside a tokio runtime.
pub async fn serve(listener: TcpListener, router: Router, config: ServeConfig) {
    let router = limited(router, &config);
    let permits = Arc::new(Semaphore::new(config.max_connections.get()));
    loop {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("the connection semaphore is never closed");
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(%error, "cannot accept an API connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = router.clone().map_request(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        );
        let header_timeout = config.header_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let connection =
                http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            if let Err(error) = connection.await {
                debug!(%peer, %error, "API connection ended with an error");
            }
        });
    }
}
