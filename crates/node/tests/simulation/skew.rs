//! One node's clock off by an amount, fixed or drifting: a runtime context that reads the
//! deterministic runtime's clock plus an offset (plus `ppm` millionths of the time since the
//! node started) and delegates everything else. Sleeps are unchanged (the rate error of a
//! drifting clock over one sleep is below a nanosecond per millisecond); deadlines are turned
//! into sleeps from now.

use commonware_runtime::{
    BlobVersion, Clock, Error, Handle, Metrics, Spawner, Storage, Supervisor, deterministic,
    signal::Signal,
    telemetry::metrics::{Metric, Registered},
};
use std::{
    future::Future,
    time::{Duration, SystemTime},
};

/// How a node's clock errs: a fixed offset, and a drift from when the node started.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClockError {
    /// Milliseconds off at the start (negative: behind).
    pub(crate) offset_ms: i64,
    /// Millionths gained per unit of time (negative: loses).
    pub(crate) drift_ppm: i64,
    /// When (simulation time) the drift started.
    origin: SystemTime,
}

/// A deterministic context whose clock reads off the simulation's by a [`ClockError`].
pub(crate) struct Skewed {
    inner: deterministic::Context,
    error: ClockError,
}

impl Skewed {
    /// `inner` with its clock moved by `offset_ms` (negative: behind) and gaining
    /// `drift_ppm` millionths from now on (0: a fixed offset).
    pub(crate) fn drifting(inner: deterministic::Context, offset_ms: i64, drift_ppm: i64) -> Self {
        let origin = inner.current();
        Self {
            inner,
            error: ClockError {
                offset_ms,
                drift_ppm,
                origin,
            },
        }
    }

    fn wrap(&self, inner: deterministic::Context) -> Self {
        Self {
            inner,
            error: self.error,
        }
    }

    /// The skewed reading of simulation time `time`.
    fn skew(&self, time: SystemTime) -> SystemTime {
        let elapsed = time.duration_since(self.error.origin).unwrap_or_default();
        let drift_ns = elapsed.as_nanos() as i128 * i128::from(self.error.drift_ppm) / 1_000_000;
        let total_ns = i128::from(self.error.offset_ms) * 1_000_000 + drift_ns;
        let by = Duration::from_nanos(u64::try_from(total_ns.unsigned_abs()).unwrap_or(u64::MAX));
        if total_ns >= 0 {
            time + by
        } else {
            time.checked_sub(by).unwrap_or(SystemTime::UNIX_EPOCH)
        }
    }
}

impl Supervisor for Skewed {
    fn name(&self) -> commonware_runtime::Name {
        self.inner.name()
    }

    fn child(&self, label: &'static str) -> Self {
        self.wrap(self.inner.child(label))
    }

    fn with_attribute(self, key: &'static str, value: impl std::fmt::Display) -> Self {
        let error = self.error;
        Self {
            inner: self.inner.with_attribute(key, value),
            error,
        }
    }
}

impl Spawner for Skewed {
    fn shared(self, blocking: bool) -> Self {
        let error = self.error;
        Self {
            inner: self.inner.shared(blocking),
            error,
        }
    }

    fn dedicated(self) -> Self {
        let error = self.error;
        Self {
            inner: self.inner.dedicated(),
            error,
        }
    }

    fn spawn<F, Fut, T>(self, f: F) -> Handle<T>
    where
        F: FnOnce(Self) -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let error = self.error;
        self.inner.spawn(move |inner| f(Self { inner, error }))
    }

    fn stop(
        self,
        value: i32,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        self.inner.stop(value, timeout)
    }

    fn stopped(&self) -> Signal {
        self.inner.stopped()
    }
}

impl Metrics for Skewed {
    fn register<N: Into<String>, H: Into<String>, M: Metric>(
        &self,
        name: N,
        help: H,
        metric: M,
    ) -> Registered<M> {
        self.inner.register(name, help, metric)
    }

    fn encode(&self) -> String {
        self.inner.encode()
    }
}

impl Clock for Skewed {
    fn current(&self) -> SystemTime {
        self.skew(self.inner.current())
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + 'static + use<> {
        self.inner.sleep(duration)
    }

    fn sleep_until(
        &self,
        deadline: SystemTime,
    ) -> impl Future<Output = ()> + Send + 'static + use<> {
        let remaining = deadline
            .duration_since(self.current())
            .unwrap_or(Duration::ZERO);
        self.inner.sleep(remaining)
    }
}

impl governor::clock::Clock for Skewed {
    type Instant = SystemTime;

    fn now(&self) -> SystemTime {
        self.current()
    }
}

impl governor::clock::ReasonablyRealtime for Skewed {}

impl rand::TryRng for Skewed {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        self.inner.try_next_u32()
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.inner.try_next_u64()
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
        self.inner.try_fill_bytes(dest)
    }
}

impl rand::TryCryptoRng for Skewed {}

impl Storage for Skewed {
    type Blob = <deterministic::Context as Storage>::Blob;

    fn open_versioned(
        &self,
        partition: &str,
        name: &[u8],
        versions: std::ops::RangeInclusive<BlobVersion>,
    ) -> impl Future<Output = Result<(Self::Blob, u64, BlobVersion), Error>> + Send {
        self.inner.open_versioned(partition, name, versions)
    }

    fn remove(
        &self,
        partition: &str,
        name: Option<&[u8]>,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        self.inner.remove(partition, name)
    }

    fn scan(&self, partition: &str) -> impl Future<Output = Result<Vec<Vec<u8>>, Error>> + Send {
        self.inner.scan(partition)
    }
}
