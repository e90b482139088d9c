//! CRLs fetched from a certificate's distribution points: the daemon's
//! side of the engine's CRL fetch, an outside operation (`CrlFetch` out,
//! `CrlFetched` in). The engine asks only once a chain's signatures
//! verified to a trust anchor; the answer is the CRLs' bytes, which the
//! engine checks (issuer, signature, currency).
//!
//! - All of a request's URIs at once; the answer has the CRL of each that
//!   gave one.
//! - HTTP only (`http://`; CRLs are signed, so TLS adds nothing), with ureq
//!   on tokio's blocking pool (docs/decisions.md): one fetch of `timeout`
//!   at most, whole (name resolution, connection, headers, body), and
//!   `max_bytes` of body at most.
//! - At most `max_at_once` fetches at a time; more wait for a slot.
//! - A CRL is cached by URI until its nextUpdate (an hour if it has none,
//!   `max_cache_secs` at most); a cached CRL answers without a fetch. A
//!   failed URI answers with its error for `failure_secs` (a burst of
//!   peers with the same dead distribution point makes one attempt). The
//!   cache keeps `max_cached` URIs at most, dropping the ones that expire
//!   first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ike::pki::Crl;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

/// Limits of the fetcher.
#[derive(Clone, Debug)]
pub struct CrlFetchLimits {
    /// One fetch, whole.
    pub timeout: Duration,
    /// Fetches under way at once.
    pub max_at_once: usize,
    /// Largest CRL accepted.
    pub max_bytes: u64,
    /// How long a failed URI is not tried again.
    pub failure_secs: i64,
    /// Longest a CRL stays cached, whatever its nextUpdate.
    pub max_cache_secs: i64,
    /// URIs in the cache.
    pub max_cached: usize,
}

impl Default for CrlFetchLimits {
    fn default() -> Self {
        CrlFetchLimits {
            timeout: Duration::from_secs(10),
            max_at_once: 4,
            max_bytes: 4 << 20,
            failure_secs: 30,
            max_cache_secs: 7 * 86_400,
            max_cached: 256,
        }
    }
}

/// Cached per URI: a CRL until its nextUpdate, or an error for a while.
#[derive(Clone, Debug)]
enum Entry {
    Crl { bytes: Arc<Vec<u8>>, until: i64 },
    Failed { error: String, until: i64 },
}

impl Entry {
    fn until(&self) -> i64 {
        match self {
            Entry::Crl { until, .. } | Entry::Failed { until, .. } => *until,
        }
    }
}

/// The fetcher: cheap to clone (one cache and one set of slots shared).
#[derive(Clone, Debug)]
pub struct CrlFetcher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limits: CrlFetchLimits,
    slots: Semaphore,
    cache: Mutex<HashMap<String, Entry>>,
    agent: ureq::Agent,
}

/// The current time in Unix seconds.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl CrlFetcher {
    pub fn new(limits: CrlFetchLimits) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(limits.timeout))
            .http_status_as_error(true)
            .max_redirects(3)
            .user_agent("iked")
            .build()
            .new_agent();
        CrlFetcher {
            inner: Arc::new(Inner {
                slots: Semaphore::new(limits.max_at_once.max(1)),
                limits,
                cache: Mutex::new(HashMap::new()),
                agent,
            }),
        }
    }

    /// The CRLs of `uris` (each cached or fetched, all at once), as their
    /// bytes (PEM or DER, as served), from every URI that gave one; if
    /// none did, every URI's error. The engine's `CrlFetched` result.
    pub async fn fetch(&self, uris: &[String]) -> Result<Vec<Vec<u8>>, String> {
        let tasks: Vec<_> = uris
            .iter()
            .map(|uri| {
                let me = self.clone();
                let uri = uri.clone();
                tokio::spawn(async move {
                    let r = me.fetch_one(&uri).await;
                    (uri, r)
                })
            })
            .collect();
        let mut crls = Vec::new();
        let mut errors = Vec::new();
        for t in tasks {
            match t.await {
                Ok((_, Ok(bytes))) => crls.push(bytes.as_ref().clone()),
                Ok((uri, Err(e))) => errors.push(format!("{uri}: {e}")),
                Err(e) => errors.push(format!("fetch task failed: {e}")),
            }
        }
        if !crls.is_empty() {
            return Ok(crls);
        }
        if errors.is_empty() {
            return Err("no CRL distribution point".to_owned());
        }
        Err(errors.join("; "))
    }

    fn cached(&self, uri: &str, now: i64) -> Option<Result<Arc<Vec<u8>>, String>> {
        let cache = self.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
        match cache.get(uri) {
            Some(e) if e.until() > now => Some(match e {
                Entry::Crl { bytes, .. } => Ok(bytes.clone()),
                Entry::Failed { error, .. } => Err(format!("{error} (not retried yet)")),
            }),
            _ => None,
        }
    }

    fn store(&self, uri: &str, entry: Entry, now: i64) {
        let mut cache = self.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, e| e.until() > now);
        while cache.len() >= self.inner.limits.max_cached {
            let Some(first) = cache
                .iter()
                .min_by_key(|(_, e)| e.until())
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            cache.remove(&first);
        }
        cache.insert(uri.to_owned(), entry);
    }

    async fn fetch_one(&self, uri: &str) -> Result<Arc<Vec<u8>>, String> {
        if let Some(r) = self.cached(uri, unix_now()) {
            debug!("CRL {uri}: from the cache");
            return r;
        }
        if !uri
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
        {
            return Err("only http:// distribution points are fetched".to_owned());
        }
        let _slot = self
            .inner
            .slots
            .acquire()
            .await
            .map_err(|_| "the fetcher is closed".to_owned())?;
        // Another request may have fetched it while this one waited.
        if let Some(r) = self.cached(uri, unix_now()) {
            return r;
        }
        let inner = self.inner.clone();
        let owned = uri.to_owned();
        let got = tokio::task::spawn_blocking(move || get(&inner, &owned))
            .await
            .map_err(|e| format!("fetch task failed: {e}"))
            .and_then(|r| r);
        let now = unix_now();
        let limits = &self.inner.limits;
        match got.and_then(|bytes| check(&bytes).map(|next| (bytes, next))) {
            Ok((bytes, next_update)) => {
                let bytes = Arc::new(bytes);
                let until = next_update
                    .unwrap_or(now.saturating_add(3600))
                    .min(now.saturating_add(limits.max_cache_secs));
                info!(
                    "fetched CRL from {uri} ({} bytes){}",
                    bytes.len(),
                    if until > now {
                        format!(", cached for {} s", until.saturating_sub(now))
                    } else {
                        ", past its nextUpdate: not cached".to_owned()
                    }
                );
                if until > now {
                    self.store(
                        uri,
                        Entry::Crl {
                            bytes: bytes.clone(),
                            until,
                        },
                        now,
                    );
                }
                Ok(bytes)
            }
            Err(error) => {
                warn!("fetching CRL from {uri} failed: {error}");
                self.store(
                    uri,
                    Entry::Failed {
                        error: error.clone(),
                        until: now.saturating_add(limits.failure_secs),
                    },
                    now,
                );
                Err(error)
            }
        }
    }
}

/// One blocking GET (on tokio's blocking pool).
fn get(inner: &Inner, uri: &str) -> Result<Vec<u8>, String> {
    let mut resp = inner.agent.get(uri).call().map_err(|e| e.to_string())?;
    resp.body_mut()
        .with_config()
        .limit(inner.limits.max_bytes)
        .read_to_vec()
        .map_err(|e| e.to_string())
}

/// The bytes are a CRL (the first, if several): its nextUpdate.
fn check(bytes: &[u8]) -> Result<Option<i64>, String> {
    let crls = Crl::parse_pem_or_der(bytes).map_err(|e| format!("not a CRL: {e}"))?;
    let first = crls
        .first()
        .ok_or_else(|| "no CRL in the answer".to_owned())?;
    Ok(first.next_update())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A CRL in DER, built by hand (`test_crl`; tests/lab/pki.sh makes
    /// real ones for the lab).
    fn der_crl(next_update_in: Option<i64>) -> Vec<u8> {
        test_crl::build(unix_now(), next_update_in)
    }

    /// A one-thread HTTP server on 127.0.0.1 answering every GET with
    /// `status` and `body` after `delay`; counts requests.
    struct Server {
        addr: std::net::SocketAddr,
        hits: Arc<AtomicUsize>,
    }

    fn serve(status: u16, body: Vec<u8>, delay: Duration) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let body = body.clone();
                let h = h.clone();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(s.try_clone().unwrap());
                    let mut line = String::new();
                    while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                        line.clear();
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(delay);
                    let _ = write!(
                        s,
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(&body);
                });
            }
        });
        Server { addr, hits }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_crl_is_fetched_once_and_cached_until_next_update() {
        let crl = der_crl(Some(3600));
        let s = serve(200, crl.clone(), Duration::ZERO);
        let f = CrlFetcher::new(CrlFetchLimits::default());
        let uri = format!("http://{}/int.crl", s.addr);
        rt().block_on(async {
            assert_eq!(
                f.fetch(std::slice::from_ref(&uri)).await.unwrap(),
                vec![crl.clone()]
            );
            assert_eq!(
                f.fetch(std::slice::from_ref(&uri)).await.unwrap(),
                vec![crl.clone()]
            );
        });
        assert_eq!(s.hits.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_crl_past_its_next_update_is_returned_but_not_cached() {
        let crl = der_crl(Some(-60));
        let s = serve(200, crl.clone(), Duration::ZERO);
        let f = CrlFetcher::new(CrlFetchLimits::default());
        let uri = format!("http://{}/old.crl", s.addr);
        rt().block_on(async {
            assert_eq!(
                f.fetch(std::slice::from_ref(&uri)).await.unwrap(),
                vec![crl.clone()]
            );
            assert_eq!(
                f.fetch(std::slice::from_ref(&uri)).await.unwrap(),
                vec![crl.clone()]
            );
        });
        assert_eq!(s.hits.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn errors_name_each_uri_and_every_uri_that_answers_counts() {
        let crl = der_crl(Some(3600));
        let missing = serve(404, Vec::new(), Duration::ZERO);
        let garbage = serve(200, b"not a crl".to_vec(), Duration::ZERO);
        let good = serve(200, crl.clone(), Duration::ZERO);
        let f = CrlFetcher::new(CrlFetchLimits::default());
        let uris = [
            "ldap://ldap.example/cn=crl".to_owned(),
            format!("http://{}/a.crl", missing.addr),
            format!("http://{}/b.crl", garbage.addr),
        ];
        let e = rt().block_on(f.fetch(&uris)).unwrap_err();
        assert!(
            e.contains("ldap://ldap.example/cn=crl: only http://"),
            "{e}"
        );
        assert!(e.contains("a.crl: http status: 404"), "{e}");
        assert!(e.contains("b.crl: not a CRL"), "{e}");
        // A failed URI is not tried again for a while.
        let e = rt().block_on(f.fetch(&uris[1..2])).unwrap_err();
        assert!(e.contains("not retried yet"), "{e}");
        assert_eq!(missing.hits.load(Ordering::SeqCst), 1);
        // With one that works: its CRL alone, the errors only logged.
        let mut with_good = uris.to_vec();
        with_good.push(format!("http://{}/c.crl", good.addr));
        assert_eq!(
            rt().block_on(f.fetch(&with_good)).unwrap(),
            vec![crl.clone()]
        );
        // Two that work: both CRLs, in the order of the URIs.
        let other = der_crl(Some(7200));
        let good2 = serve(200, other.clone(), Duration::ZERO);
        let two = [
            format!("http://{}/d.crl", good2.addr),
            format!("http://{}/c.crl", good.addr),
        ];
        assert_eq!(rt().block_on(f.fetch(&two)).unwrap(), [other, crl]);
        assert!(rt().block_on(f.fetch(&[])).is_err());
    }

    #[test]
    fn a_slow_server_times_out_and_a_large_crl_is_refused() {
        let slow = serve(200, der_crl(Some(3600)), Duration::from_secs(3));
        let big = serve(200, vec![0x30; 5000], Duration::ZERO);
        let f = CrlFetcher::new(CrlFetchLimits {
            timeout: Duration::from_millis(300),
            max_bytes: 4096,
            ..CrlFetchLimits::default()
        });
        let t = std::time::Instant::now();
        let e = rt()
            .block_on(f.fetch(&[format!("http://{}/slow.crl", slow.addr)]))
            .unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(e.to_lowercase().contains("timeout"), "{e}");
        let e = rt()
            .block_on(f.fetch(&[format!("http://{}/big.crl", big.addr)]))
            .unwrap_err();
        assert!(e.contains("limit"), "{e}");
    }

    #[test]
    fn fetches_at_once_are_limited_and_waiters_use_the_cache() {
        let crl = der_crl(Some(3600));
        let s = serve(200, crl.clone(), Duration::from_millis(300));
        let other = serve(200, crl.clone(), Duration::from_millis(300));
        let f = CrlFetcher::new(CrlFetchLimits {
            max_at_once: 1,
            ..CrlFetchLimits::default()
        });
        let uri = format!("http://{}/int.crl", s.addr);
        let uri2 = format!("http://{}/other.crl", other.addr);
        let t = std::time::Instant::now();
        rt().block_on(async {
            let mut tasks = Vec::new();
            for i in 0..6 {
                let f = f.clone();
                let u = if i % 2 == 0 {
                    uri.clone()
                } else {
                    uri2.clone()
                };
                tasks.push(tokio::spawn(async move { f.fetch(&[u]).await }));
            }
            for t in tasks {
                assert_eq!(t.await.unwrap().unwrap(), vec![crl.clone()]);
            }
        });
        // One fetch per URI (the others found it cached after waiting for
        // the slot), one after the other: two delays at least.
        assert_eq!(s.hits.load(Ordering::SeqCst), 1);
        assert_eq!(other.hits.load(Ordering::SeqCst), 1);
        assert!(
            t.elapsed() >= Duration::from_millis(600),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn the_cache_is_bounded() {
        let f = CrlFetcher::new(CrlFetchLimits {
            max_cached: 3,
            ..CrlFetchLimits::default()
        });
        let now = unix_now();
        for i in 0..10_i64 {
            f.store(
                &format!("http://x/{i}"),
                Entry::Failed {
                    error: String::new(),
                    until: now + 100 - i,
                },
                now,
            );
        }
        let cache = f.inner.cache.lock().unwrap();
        assert_eq!(cache.len(), 3);
        // The ones that expire first go; the one just stored stays.
        assert!(cache.contains_key("http://x/9"));
        assert!(cache.contains_key("http://x/0"));
    }

    /// A minimal CRL in DER: version 2, sha256WithRSAEncryption, issuer
    /// CN=t, thisUpdate now, nextUpdate as asked, one revoked serial. The
    /// signature is not valid: the fetcher checks the form only (the
    /// engine checks the signature).
    mod test_crl {
        fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
            let mut v = vec![tag];
            let n = body.len();
            if n < 128 {
                v.push(n as u8);
            } else if n < 256 {
                v.extend([0x81, n as u8]);
            } else {
                v.extend([0x82, (n >> 8) as u8, n as u8]);
            }
            v.extend_from_slice(body);
            v
        }

        fn utc(t: i64) -> Vec<u8> {
            // UTCTime YYMMDDHHMMSSZ from "YYYY-MM-DD HH:MM:SS UTC".
            let text = ike::pki::time_text(t);
            let digits: String = text.chars().filter(char::is_ascii_digit).collect();
            let s = format!("{}Z", &digits[2..14]);
            tlv(0x17, s.as_bytes())
        }

        pub fn build(now: i64, next_update_in: Option<i64>) -> Vec<u8> {
            let alg = tlv(
                0x30,
                &[
                    &[
                        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b,
                    ][..],
                    &[0x05, 0x00],
                ]
                .concat(),
            );
            let cn = tlv(
                0x31,
                &tlv(
                    0x30,
                    &[&[0x06, 0x03, 0x55, 0x04, 0x03][..], &tlv(0x0c, b"t")].concat(),
                ),
            );
            let issuer = tlv(0x30, &cn);
            let revoked = tlv(
                0x30,
                &tlv(0x30, &[tlv(0x02, &[0x10, 0x0d]), utc(now - 60)].concat()),
            );
            let mut tbs = tlv(0x02, &[1]);
            tbs.extend(&alg);
            tbs.extend(&issuer);
            tbs.extend(utc(now - 60));
            if let Some(n) = next_update_in {
                tbs.extend(utc(now + n));
            }
            tbs.extend(revoked);
            let tbs = tlv(0x30, &tbs);
            let sig = tlv(0x03, &[0, 1, 2, 3]);
            tlv(0x30, &[tbs, alg, sig].concat())
        }
    }
}
