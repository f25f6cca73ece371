//! One node's clock off by a fixed amount: a runtime context that reads the deterministic
//! runtime's clock plus an offset and delegates everything else. Sleeps are unchanged (a
//! skewed clock still ticks at the same rate); deadlines are translated back to real time.

use commonware_runtime::{
    BlobVersion, Clock, Error, Handle, Metrics, Spawner, Storage, Supervisor, deterministic,
    signal::Signal,
    telemetry::metrics::{Metric, Registered},
};
use std::{
    future::Future,
    time::{Duration, SystemTime},
};

/// A deterministic context whose clock reads `offset_ms` off the simulation's.
pub(crate) struct Skewed {
    inner: deterministic::Context,
    offset_ms: i64,
}

impl Skewed {
    /// `inner` with its clock moved by `offset_ms` (negative: behind).
    pub(crate) fn new(inner: deterministic::Context, offset_ms: i64) -> Self {
        Self { inner, offset_ms }
    }

    fn wrap(&self, inner: deterministic::Context) -> Self {
        Self::new(inner, self.offset_ms)
    }

    fn shift(&self, time: SystemTime, sign: i64) -> SystemTime {
        let offset = Duration::from_millis(self.offset_ms.unsigned_abs());
        if self.offset_ms * sign >= 0 {
            time + offset
        } else {
            time.checked_sub(offset).unwrap_or(SystemTime::UNIX_EPOCH)
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
        let offset_ms = self.offset_ms;
        Self::new(self.inner.with_attribute(key, value), offset_ms)
    }
}

impl Spawner for Skewed {
    fn shared(self, blocking: bool) -> Self {
        let offset_ms = self.offset_ms;
        Self::new(self.inner.shared(blocking), offset_ms)
    }

    fn dedicated(self) -> Self {
        let offset_ms = self.offset_ms;
        Self::new(self.inner.dedicated(), offset_ms)
    }

    fn spawn<F, Fut, T>(self, f: F) -> Handle<T>
    where
        F: FnOnce(Self) -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let offset_ms = self.offset_ms;
        self.inner
            .spawn(move |inner| f(Self::new(inner, offset_ms)))
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
        self.shift(self.inner.current(), 1)
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + 'static + use<> {
        self.inner.sleep(duration)
    }

    fn sleep_until(
        &self,
        deadline: SystemTime,
    ) -> impl Future<Output = ()> + Send + 'static + use<> {
        self.inner.sleep_until(self.shift(deadline, -1))
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
