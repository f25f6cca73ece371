//! The per-stage breakdown of a load, from the nodes' `GET /metrics` (Prometheus or
//! OpenMetrics text).
//!
//! Every histogram whose samples carry a `stage` label is a stage histogram, whatever its
//! metric-name prefix: `<name>_bucket{stage="admitted",le="0.005"} 12`. Each node is scraped
//! before and after a load; the difference, summed over nodes, is the load's own histogram, and
//! its median and 90th percentile are estimated by linear interpolation within buckets (as
//! Prometheus' `histogram_quantile` does).
//!
//! Each page's fsync count (commonware's `runtime_storage_syncs_total`) is kept too: divided
//! by the blocks committed meanwhile (the `state_commit` block stage), it gives the fsyncs each
//! node makes per block.

use serde::Serialize;
use std::collections::BTreeMap;

/// Largest metrics page read from a node.
const MAX_METRICS_BYTES: u64 = 16 * 1024 * 1024;
/// Most distinct stage histograms kept from one page; the rest are ignored.
const MAX_HISTOGRAMS: usize = 256;
/// The commonware runtime's counter of storage syncs (fsyncs).
const SYNCS_METRIC: &str = "runtime_storage_syncs_total";
/// The block stage observed once per committed block.
const BLOCK_COMMIT_STAGE: &str = "state_commit";

/// Most buckets kept per histogram.
const MAX_BUCKETS: usize = 128;

/// Stage names in the order a transaction and its block go through them (the issue's
/// stages, with the node's per-block steps where they fall), for printing.
const PIPELINE: [&str; 14] = [
    "admitted",
    "gossiped",
    "proposed",
    "notarized",
    "finalized",
    "delivered",
    "execute",
    "log_append",
    "state_commit",
    "checkpoint_sign",
    "signatures",
    "applied",
    "acknowledged",
    "certified",
];

/// One stage histogram: cumulative counts by upper bound (`le`), ascending.
#[derive(Clone, Debug, PartialEq)]
struct Histogram {
    metric: String,
    stage: String,
    buckets: Vec<(f64, f64)>,
}

impl Histogram {
    /// Adds `count` to the bucket with bound `le` (creating it, in order).
    fn add(&mut self, le: f64, count: f64) {
        match self.buckets.binary_search_by(|(b, _)| b.total_cmp(&le)) {
            Ok(i) => self.buckets[i].1 += count,
            Err(i) if self.buckets.len() < MAX_BUCKETS => self.buckets.insert(i, (le, count)),
            Err(_) => {}
        }
    }
}

/// The stage histograms of one or more metrics pages, in the order they first appear.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Scrape {
    histograms: Vec<Histogram>,
    /// The node's fsyncs so far (or, after [`Scrape::since`], during the load).
    syncs: Option<f64>,
}

impl Scrape {
    /// Parses a metrics page, keeping only stage histogram buckets; malformed lines are
    /// skipped. Samples of one (metric, stage) that differ in other labels are summed.
    pub(super) fn parse(text: &str) -> Self {
        let mut scrape = Self::default();
        for line in text.lines() {
            if let Some((metric, stage, le, count)) = bucket_sample(line) {
                scrape.add(metric, stage, le, count);
            } else if let Some(value) = line.trim().strip_prefix(SYNCS_METRIC)
                && let Some(value) = value.strip_prefix(' ')
            {
                scrape.syncs = value
                    .split_whitespace()
                    .next()
                    .and_then(parse_value)
                    .filter(|v| v.is_finite() && *v >= 0.0);
            }
        }
        scrape
    }

    /// True if the page had no stage histogram.
    pub(super) fn is_empty(&self) -> bool {
        self.histograms.is_empty()
    }

    fn add(&mut self, metric: &str, stage: &str, le: f64, count: f64) {
        let found = self
            .histograms
            .iter()
            .position(|h| h.metric == metric && h.stage == stage);
        let index = match found {
            Some(index) => index,
            None if self.histograms.len() < MAX_HISTOGRAMS => {
                self.histograms.push(Histogram {
                    metric: metric.to_string(),
                    stage: stage.to_string(),
                    buckets: Vec::new(),
                });
                self.histograms.len() - 1
            }
            None => return,
        };
        self.histograms[index].add(le, count);
    }

    /// What was observed between `before` and `self` (a later page of the same node). A
    /// bucket that went down (the node restarted) counts from zero.
    pub(super) fn since(&self, before: &Scrape) -> Scrape {
        let mut delta = Scrape {
            syncs: match (self.syncs, before.syncs) {
                (Some(now), Some(old)) if now >= old => Some(now - old),
                (now, _) => now,
            },
            ..Scrape::default()
        };
        for histogram in &self.histograms {
            let earlier = before
                .histograms
                .iter()
                .find(|h| h.metric == histogram.metric && h.stage == histogram.stage);
            for &(le, count) in &histogram.buckets {
                let old = earlier
                    .and_then(|h| h.buckets.iter().find(|(b, _)| *b == le))
                    .map_or(0.0, |(_, c)| *c);
                let observed = if count >= old { count - old } else { count };
                delta.add(&histogram.metric, &histogram.stage, le, observed);
            }
        }
        delta
    }

    /// Adds another node's histograms to these.
    pub(super) fn merge(&mut self, other: &Scrape) {
        self.syncs = match (self.syncs, other.syncs) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        for histogram in &other.histograms {
            for &(le, count) in &histogram.buckets {
                self.add(&histogram.metric, &histogram.stage, le, count);
            }
        }
    }

    /// Fsyncs per committed block, per node: the syncs over the blocks each node committed
    /// (both summed over nodes). `None` without either.
    pub(super) fn fsyncs_per_block(&self) -> Option<f64> {
        let blocks: f64 = self
            .histograms
            .iter()
            .filter(|h| h.metric.ends_with("block_stage_seconds") && h.stage == BLOCK_COMMIT_STAGE)
            .filter_map(|h| h.buckets.last().map(|(_, count)| *count))
            .sum();
        (blocks > 0.0).then_some(self.syncs? / blocks)
    }

    /// The median and 90th percentile of every stage: metrics in order of first appearance;
    /// within one, the stages named in [`PIPELINE`] in that order, then the others as they
    /// appeared (the text format lists a metric's label sets in no particular order).
    pub(super) fn breakdown(&self) -> Vec<StageFigure> {
        let mut metrics: Vec<&str> = Vec::new();
        for h in &self.histograms {
            if !metrics.contains(&h.metric.as_str()) {
                metrics.push(&h.metric);
            }
        }
        let mut order: Vec<&Histogram> = self.histograms.iter().collect();
        // A stable sort: unnamed stages keep their order of appearance.
        order.sort_by_key(|h| {
            let metric = metrics.iter().position(|m| *m == h.metric);
            let stage = PIPELINE.iter().position(|s| *s == h.stage);
            (metric, stage.unwrap_or(PIPELINE.len()))
        });
        order
            .into_iter()
            .map(|h| StageFigure {
                metric: h.metric.clone(),
                stage: h.stage.clone(),
                count: h.buckets.last().map_or(0.0, |(_, c)| *c),
                p50: quantile(&h.buckets, 0.5),
                p90: quantile(&h.buckets, 0.9),
            })
            .collect()
    }
}

/// One stage's figures over a load, in the histogram's unit (seconds for `_seconds` metrics).
#[derive(Clone, Debug, Serialize)]
pub(super) struct StageFigure {
    /// The histogram's metric name, without `_bucket`.
    pub(super) metric: String,
    /// The `stage` label.
    pub(super) stage: String,
    /// Observations during the load, summed over nodes.
    pub(super) count: f64,
    /// Estimated median; `None` when nothing was observed.
    pub(super) p50: Option<f64>,
    /// Estimated 90th percentile; `None` when nothing was observed.
    pub(super) p90: Option<f64>,
}

/// The metric name, stage, bound and count of a stage histogram bucket sample, or `None` for
/// any other line (comments, other metrics, malformed samples).
fn bucket_sample(line: &str) -> Option<(&str, &str, f64, f64)> {
    let line = line.trim();
    if line.starts_with('#') {
        return None;
    }
    let open = line.find('{')?;
    let metric = line[..open].strip_suffix("_bucket")?;
    if metric.is_empty() {
        return None;
    }
    let (labels, rest) = parse_labels(&line[open + 1..])?;
    let stage = *labels.get("stage")?;
    let le = parse_value(labels.get("le")?)?;
    // The value, then an optional timestamp (and, in OpenMetrics, an optional exemplar).
    let count = parse_value(rest.split_whitespace().next()?)?;
    if le.is_nan() || !count.is_finite() || count < 0.0 {
        return None;
    }
    Some((metric, stage, le, count))
}

/// Parses `name="value",...}` up to the closing brace; returns the labels (values still
/// escaped) and the rest of the line. `None` if the label set is malformed.
fn parse_labels(text: &str) -> Option<(BTreeMap<&str, &str>, &str)> {
    let mut labels = BTreeMap::new();
    let mut rest = text.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = rest.find('=')?;
        let name = rest[..eq].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        let quoted = rest[eq + 1..].trim_start().strip_prefix('"')?;
        let end = closing_quote(quoted)?;
        labels.insert(name, &quoted[..end]);
        rest = quoted[end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
}

/// The byte index of the first unescaped `"` in `text`.
fn closing_quote(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

/// A sample value or bound: a float, or `+Inf`/`-Inf`/`NaN` as the text formats spell them.
fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// The `q` quantile of a cumulative histogram, interpolating linearly within the bucket that
/// holds it (from 0, or the previous bound, to its bound). When it falls in the `+Inf` bucket,
/// the highest finite bound. `None` when the histogram is empty.
fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower);
            }
            let within = count - below;
            let fraction = if within > 0.0 {
                (rank - below) / within
            } else {
                1.0
            };
            return Some(lower + (bound - lower) * fraction);
        }
        (lower, below) = (bound, count);
    }
    Some(lower)
}

/// Fetches one node's metrics page: `Ok(None)` if the node serves none (404).
pub(super) fn fetch(agent: &ureq::Agent, api: &str) -> anyhow::Result<Option<Scrape>> {
    let url = format!("{}/metrics", api.trim_end_matches('/'));
    let mut response = agent
        .get(&url)
        .call()
        .map_err(|e| anyhow::anyhow!("cannot fetch {url}: {e}"))?;
    match response.status().as_u16() {
        404 => Ok(None),
        200 => {
            let text = response
                .body_mut()
                .with_config()
                .limit(MAX_METRICS_BYTES)
                .read_to_string()
                .map_err(|e| anyhow::anyhow!("cannot read {url}: {e}"))?;
            Ok(Some(Scrape::parse(&text)))
        }
        status => anyhow::bail!("{url} answered HTTP {status}"),
    }
}

/// Scrapes every node's stage histograms around a load.
pub(super) struct Probe {
    agent: ureq::Agent,
    apis: Vec<String>,
    warned: bool,
}

impl Probe {
    /// A probe of the nodes at `apis`.
    pub(super) fn new(apis: &[String]) -> Self {
        Self {
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(std::time::Duration::from_secs(10)))
                .http_status_as_error(false)
                .build()
                .into(),
            apis: apis.to_vec(),
            warned: false,
        }
    }

    /// Every node's stage histograms now (`None` for a node without them). The first time a
    /// node has none, says so on stderr; the benchmark carries on without its breakdown.
    pub(super) fn snapshot(&mut self) -> Vec<Option<Scrape>> {
        let mut pages = Vec::with_capacity(self.apis.len());
        for api in &self.apis {
            let (page, why) = match fetch(&self.agent, api) {
                Ok(Some(page)) if !page.is_empty() => (Some(page), None),
                Ok(Some(_)) => (
                    None,
                    Some("serves /metrics without stage histograms".into()),
                ),
                Ok(None) => (None, Some("serves no /metrics (404)".into())),
                Err(e) => (None, Some(format!("gave no metrics: {e:#}"))),
            };
            if let Some(why) = why.filter(|_| !self.warned) {
                eprintln!("note: {api} {why}; no per-stage breakdown from it");
                self.warned = true;
            }
            pages.push(page);
        }
        pages
    }

    /// The stages observed since `before` (from [`Self::snapshot`]), summed over the nodes
    /// that had stage histograms both times, and the fsyncs per block per node meanwhile.
    pub(super) fn breakdown(&mut self, before: &[Option<Scrape>]) -> Breakdown {
        let mut total = Scrape::default();
        for (after, before) in self.snapshot().iter().zip(before) {
            if let (Some(after), Some(before)) = (after, before) {
                total.merge(&after.since(before));
            }
        }
        Breakdown {
            stages: total.breakdown(),
            fsyncs_per_block: total.fsyncs_per_block(),
        }
    }
}

/// What the nodes' metrics say about one load.
#[derive(Clone, Debug, Default, Serialize)]
pub(super) struct Breakdown {
    /// Every stage's figures.
    pub(super) stages: Vec<StageFigure>,
    /// Fsyncs each node made per committed block during the load.
    pub(super) fsyncs_per_block: Option<f64>,
}

impl Breakdown {
    /// True if the nodes served no stage histograms.
    pub(super) fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }
}

/// Prints a breakdown, one stage a line, in milliseconds for `_seconds` histograms, then the
/// fsyncs per block.
pub(super) fn print(breakdown: &Breakdown) {
    for figure in &breakdown.stages {
        let scale = if figure.metric.ends_with("_seconds") {
            1000.0
        } else {
            1.0
        };
        let unit = if scale == 1000.0 { " ms" } else { "" };
        let show =
            |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.2}{unit}", v * scale));
        println!(
            "  {:<40} {:<16} p50 {:>12}  p90 {:>12}  ({} observed)",
            figure.metric,
            figure.stage,
            show(figure.p50),
            show(figure.p90),
            figure.count
        );
    }
    if let Some(fsyncs) = breakdown.fsyncs_per_block {
        println!("  fsyncs per committed block, per node: {fsyncs:.1}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"# HELP welkin_tx_stage_seconds Time from submission to each stage.
# TYPE welkin_tx_stage_seconds histogram
welkin_tx_stage_seconds_bucket{stage="admitted",le="0.001"} 0
welkin_tx_stage_seconds_bucket{stage="admitted",le="0.002"} 10
welkin_tx_stage_seconds_bucket{stage="admitted",le="0.004"} 20
welkin_tx_stage_seconds_bucket{stage="admitted",le="+Inf"} 20
welkin_tx_stage_seconds_sum{stage="admitted"} 0.05
welkin_tx_stage_seconds_count{stage="admitted"} 20
welkin_tx_stage_seconds_bucket{le="0.01",stage="finalized"} 5 1700000000
welkin_tx_stage_seconds_bucket{le="0.02",stage="finalized"} 15
welkin_tx_stage_seconds_bucket{le="+Inf",stage="finalized"} 20
other_block_seconds_bucket{le="0.5"} 3
broken_bucket{stage="admitted",le="0.1" 4
broken_bucket{stage="admitted,le="0.1"} 4
broken_bucket{stage="admitted",le="x"} 4
broken_bucket{stage="admitted",le="0.1"}
broken_bucket{stage="admitted",le="0.1"} -3
{stage="admitted",le="0.1"} 4
_bucket{stage="admitted",le="0.1"} 4
weird_bucket{stage="a \"quoted\" stage",le="1"} 2
# EOF
"#;

    #[test]
    fn parse_keeps_stage_buckets_in_order_and_skips_malformed_lines() {
        let scrape = Scrape::parse(PAGE);
        let names: Vec<_> = scrape
            .histograms
            .iter()
            .map(|h| (h.metric.as_str(), h.stage.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("welkin_tx_stage_seconds", "admitted"),
                ("welkin_tx_stage_seconds", "finalized"),
                ("weird", r#"a \"quoted\" stage"#),
            ]
        );
        assert_eq!(
            scrape.histograms[1].buckets,
            [(0.01, 5.0), (0.02, 15.0), (f64::INFINITY, 20.0)]
        );
    }

    #[test]
    fn breakdown_lists_known_stages_in_pipeline_order_within_each_metric() {
        let page = "b_bucket{stage=\"zeta\",le=\"1\"} 1\n\
                    a_bucket{stage=\"certified\",le=\"1\"} 1\n\
                    b_bucket{stage=\"execute\",le=\"1\"} 1\n\
                    a_bucket{stage=\"other\",le=\"1\"} 1\n\
                    a_bucket{stage=\"admitted\",le=\"1\"} 1\n";
        let order: Vec<_> = Scrape::parse(page)
            .breakdown()
            .into_iter()
            .map(|f| format!("{}/{}", f.metric, f.stage))
            .collect();
        assert_eq!(
            order,
            [
                "b/execute",
                "b/zeta",
                "a/admitted",
                "a/certified",
                "a/other"
            ]
        );
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "",
            "}",
            "{",
            "a_bucket{",
            "a_bucket{le=",
            "a_bucket{le=\"",
            "é_bucket{é",
        ] {
            assert!(Scrape::parse(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn quantile_interpolates_within_the_bucket() {
        let buckets = [
            (0.001, 0.0),
            (0.002, 10.0),
            (0.004, 20.0),
            (f64::INFINITY, 20.0),
        ];
        let median = quantile(&buckets, 0.5).expect("observations");
        assert!((median - 0.002).abs() < 1e-12, "{median}");
        let p90 = quantile(&buckets, 0.9).expect("observations");
        assert!((p90 - 0.0036).abs() < 1e-12, "{p90}");
        // A quarter of the way in the first bucket, counted from zero.
        let low = quantile(&[(0.004, 8.0)], 0.25).expect("observations");
        assert!((low - 0.001).abs() < 1e-12, "{low}");
        assert_eq!(quantile(&[(0.01, 0.0), (f64::INFINITY, 0.0)], 0.5), None);
        assert_eq!(
            quantile(&[(0.01, 1.0), (f64::INFINITY, 10.0)], 0.5),
            Some(0.01)
        );
    }

    #[test]
    fn breakdown_subtracts_the_page_before_and_sums_nodes() {
        let before = Scrape::parse(PAGE);
        let after = Scrape::parse(&PAGE.replace("le=\"+Inf\"} 20", "le=\"+Inf\"} 30"));
        let mut total = after.since(&before);
        total.merge(&after.since(&before));
        let figures = total.breakdown();
        assert_eq!(figures[0].stage, "admitted");
        assert_eq!(figures[0].count, 20.0);
        // Only the +Inf bucket grew for `admitted`: the new observations are above 4 ms.
        assert_eq!(figures[0].p50, Some(0.004));
        assert_eq!(figures[1].stage, "finalized");
        assert_eq!(figures[1].count, 0.0);
        assert_eq!(figures[1].p50, None);
    }

    #[test]
    fn fsyncs_per_block_divides_the_syncs_by_the_blocks_committed_meanwhile() {
        let page = |syncs: u64, blocks: u64| {
            format!(
                "# TYPE runtime_storage_syncs counter\n\
                 runtime_storage_syncs_total {syncs}\n\
                 runtime_storage_syncs_totally_other 999\n\
                 node_block_stage_seconds_bucket{{le=\"0.001\",stage=\"state_commit\"}} 0\n\
                 node_block_stage_seconds_bucket{{le=\"+Inf\",stage=\"state_commit\"}} {blocks}\n\
                 node_block_stage_seconds_bucket{{le=\"+Inf\",stage=\"execute\"}} 5000\n"
            )
        };
        let node = |before: (u64, u64), after: (u64, u64)| {
            Scrape::parse(&page(after.0, after.1)).since(&Scrape::parse(&page(before.0, before.1)))
        };
        // Two nodes: 280 syncs over 10 blocks, and 300 over 10.
        let mut total = node((100, 5), (380, 15));
        total.merge(&node((0, 0), (300, 10)));
        assert_eq!(total.fsyncs_per_block(), Some(29.0));
        // No block committed, or no sync counter: no figure.
        assert_eq!(node((100, 5), (380, 5)).fsyncs_per_block(), None);
        assert_eq!(Scrape::parse(PAGE).fsyncs_per_block(), None);
    }

    /// Serves `pages` in turn at `/metrics` (404 after the last, or for an empty list) from a
    /// thread; returns its URL.
    fn serve(pages: Vec<String>) -> String {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        std::thread::spawn(move || {
            let mut pages = pages.into_iter();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let (status, body) = match pages.next() {
                    Some(page) if head.starts_with(b"GET /metrics ") => ("200 OK", page),
                    _ => ("404 Not Found", String::new()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        url
    }

    #[test]
    fn probe_sums_the_nodes_with_metrics_and_carries_on_past_one_without() {
        let later = PAGE.replace("le=\"+Inf\"} 20", "le=\"+Inf\"} 30");
        let apis = [
            serve(vec![PAGE.to_string(), later.clone()]),
            serve(Vec::new()),
            serve(vec![PAGE.to_string(), later]),
        ];
        let mut probe = Probe::new(&apis);
        let before = probe.snapshot();
        assert!(before[0].is_some() && before[1].is_none() && before[2].is_some());
        let figures = probe.breakdown(&before).stages;
        assert_eq!(figures[0].stage, "admitted");
        assert_eq!(figures[0].count, 20.0);
        assert_eq!(figures[0].p50, Some(0.004));
    }
}
