//! Work whose result is kept until its inputs change or it grows old, for
//! pages that show something proportional to the fleet or the log (the
//! fleet's posture, the audit chain's verdict).
//!
//! When the kept result is stale, it is worked out again for the caller if
//! the last working out was quick; if it was slow (a large fleet: seconds),
//! the caller gets the kept result, which says when it was worked out, and
//! a background task works out the next. A page therefore never waits for
//! slow work once there is something to show.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

use crate::error::ApiError;
use crate::handlers::ApiResult;

/// Working out for a caller takes at most this long; beyond it the caller
/// gets the kept result and the next is worked out in the background.
const INLINE: Duration = Duration::from_millis(50);

/// A kept result, with what it was worked out for and when.
pub struct Kept<T> {
    last: Mutex<Option<(u64, Timestamp, Arc<T>)>>,
    /// How long working it out took last time, in microseconds.
    took_micros: AtomicU64,
    /// Whether a background task is working it out now.
    refreshing: AtomicBool,
    /// Held while working it out, so that callers with nothing kept yet
    /// wait for the work under way instead of doing it again.
    working: tokio::sync::Mutex<()>,
}

impl<T> Default for Kept<T> {
    fn default() -> Self {
        Kept {
            last: Mutex::new(None),
            took_micros: AtomicU64::new(0),
            refreshing: AtomicBool::new(false),
            working: tokio::sync::Mutex::new(()),
        }
    }
}

impl<T> std::fmt::Debug for Kept<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept")
            .field("took_micros", &self.took_micros.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> Kept<T> {
    /// The result for inputs `key` at `now`: the kept one when it is for
    /// `key` and younger than `keep`; else worked out by `work`, here or
    /// in the background (see the module's note). Gives when it was
    /// worked out, and the result.
    pub(crate) async fn get<F, Fut>(
        self: &Arc<Self>,
        key: u64,
        now: Timestamp,
        keep: SignedDuration,
        work: F,
    ) -> ApiResult<(Timestamp, Arc<T>)>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ApiResult<T>> + Send + 'static,
    {
        let fresh = |k: u64, at: Timestamp| k == key && now.duration_since(at) < keep && at <= now;
        if let Some((k, at, value)) = self.kept() {
            if fresh(k, at) {
                return Ok((at, value));
            }
            let took = Duration::from_micros(self.took_micros.load(Ordering::Relaxed));
            if took > INLINE {
                if !self.refreshing.swap(true, Ordering::AcqRel) {
                    let me = Arc::clone(self);
                    tokio::spawn(async move {
                        if let Err(e) = me.refresh(key, now, work).await {
                            tracing::warn!("working out a kept result: {}", e.message());
                        }
                        me.refreshing.store(false, Ordering::Release);
                    });
                }
                return Ok((at, value));
            }
        }
        // Worked out here, one caller at a time: one that waited finds what
        // the caller before it kept (or, with nothing kept yet, what a
        // background task under way kept).
        let _working = self.working.lock().await;
        if let Some((k, at, value)) = self.kept() {
            if fresh(k, at) {
                return Ok((at, value));
            }
        }
        self.run(key, now, work).await
    }

    /// As [`Kept::get`], waiting at most `patience`: the working out, when
    /// one is needed, goes on in the background, and the caller gets what
    /// was kept before (dated) if it is not done by then, or none when
    /// nothing was kept yet (a large fleet just loaded). So a page never
    /// waits for a working out that the last one, made on a smaller fleet,
    /// predicted to be quick.
    pub(crate) async fn get_within<F, Fut>(
        self: &Arc<Self>,
        key: u64,
        now: Timestamp,
        keep: SignedDuration,
        patience: Duration,
        work: F,
    ) -> ApiResult<Option<(Timestamp, Arc<T>)>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ApiResult<T>> + Send + 'static,
    {
        let before = self.kept();
        let me = Arc::clone(self);
        let mut task = tokio::spawn(async move {
            let done = me.get(key, now, keep, work).await;
            if let Err(e) = &done {
                tracing::warn!("working out a kept result: {}", e.message());
            }
            done
        });
        match tokio::time::timeout(patience, &mut task).await {
            Ok(joined) => joined.map_err(ApiError::internal)?.map(Some),
            Err(_) => Ok(before.map(|(_, at, value)| (at, value))),
        }
    }

    fn kept(&self) -> Option<(u64, Timestamp, Arc<T>)> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Works the result out now for inputs `key` at `now`, and keeps it.
    pub(crate) async fn refresh<F, Fut>(
        &self,
        key: u64,
        now: Timestamp,
        work: F,
    ) -> ApiResult<(Timestamp, Arc<T>)>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResult<T>>,
    {
        let _working = self.working.lock().await;
        self.run(key, now, work).await
    }

    /// Works the result out and keeps it; the caller holds `working`.
    async fn run<F, Fut>(&self, key: u64, now: Timestamp, work: F) -> ApiResult<(Timestamp, Arc<T>)>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResult<T>>,
    {
        let started = Instant::now();
        let value = Arc::new(work().await?);
        let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.took_micros.store(took, Ordering::Relaxed);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((key, now, Arc::clone(&value)));
        Ok((now, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    #[tokio::test]
    async fn a_result_is_kept_for_its_inputs_and_worked_out_again_when_they_change() {
        let kept: Arc<Kept<u32>> = Arc::default();
        let keep = SignedDuration::from_secs(60);
        let (when, v) = kept
            .get(1, at(100), keep, || async { Ok(7) })
            .await
            .unwrap();
        assert_eq!((when, *v), (at(100), 7));
        // Same inputs, young: kept (the work is not run).
        let (_, v) = kept
            .get(1, at(130), keep, || async { Ok(8) })
            .await
            .unwrap();
        assert_eq!(*v, 7);
        // Other inputs, and quick work: worked out for the caller.
        let (when, v) = kept
            .get(2, at(131), keep, || async { Ok(9) })
            .await
            .unwrap();
        assert_eq!((when, *v), (at(131), 9));
        // Old: worked out again.
        let (_, v) = kept
            .get(2, at(200), keep, || async { Ok(10) })
            .await
            .unwrap();
        assert_eq!(*v, 10);
    }

    #[tokio::test]
    async fn slow_work_is_done_in_the_background_while_the_kept_result_is_shown() {
        let kept: Arc<Kept<u32>> = Arc::default();
        let keep = SignedDuration::from_secs(60);
        let slow = |v: u32| {
            move || async move {
                tokio::time::sleep(Duration::from_millis(80)).await;
                Ok(v)
            }
        };
        kept.get(1, at(100), keep, slow(1)).await.unwrap();
        let (when, v) = kept.get(2, at(110), keep, slow(2)).await.unwrap();
        assert_eq!((when, *v), (at(100), 1), "the kept one, at once");
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let (_, v) = kept.get(2, at(111), keep, slow(3)).await.unwrap();
            if *v == 2 {
                return;
            }
        }
        panic!("the background task never kept its result");
    }

    #[tokio::test]
    async fn a_first_working_out_under_way_is_awaited_only_so_long() {
        let kept: Arc<Kept<u32>> = Arc::default();
        let keep = SignedDuration::from_secs(60);
        // Nothing under way, quick work: begun and given at once.
        let first = kept
            .get_within(1, at(100), keep, Duration::from_secs(5), || async { Ok(1) })
            .await
            .unwrap();
        assert_eq!(first.map(|(_, v)| *v), Some(1));
        // Nothing under way, slow work: begun, not waited for beyond the
        // patience, and kept when done.
        let slow: Arc<Kept<u32>> = Arc::default();
        let none = slow
            .get_within(1, at(100), keep, Duration::from_millis(20), || async {
                // Far longer than the patience, so that a stalled
                // machine does not see both end at once.
                tokio::time::sleep(Duration::from_millis(600)).await;
                Ok(3)
            })
            .await
            .unwrap();
        assert!(none.is_none(), "not waited for");
        let later = slow
            .get_within(1, at(101), keep, Duration::from_secs(5), || async { Ok(4) })
            .await
            .unwrap();
        assert_eq!(later.map(|(_, v)| *v), Some(3), "what the work begun kept");
        // A first working out under way (as at start, for a large fleet).
        let fresh: Arc<Kept<u32>> = Arc::default();
        let background = Arc::clone(&fresh);
        let task = tokio::spawn(async move {
            background
                .refresh(1, at(100), || async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok(5)
                })
                .await
                .map(|(_, v)| *v)
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let impatient = fresh
            .get_within(1, at(101), keep, Duration::from_millis(20), || async {
                Ok(6)
            })
            .await
            .unwrap();
        assert!(impatient.is_none(), "still being worked out");
        let patient = fresh
            .get_within(1, at(101), keep, Duration::from_secs(5), || async { Ok(7) })
            .await
            .unwrap();
        assert_eq!(
            patient.map(|(_, v)| *v),
            Some(5),
            "what the work under way kept"
        );
        assert_eq!(task.await.unwrap().unwrap(), 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_working_out_predicted_quick_but_slow_is_not_waited_for_past_the_patience() {
        let kept: Arc<Kept<u32>> = Arc::default();
        let keep = SignedDuration::from_secs(60);
        // Kept from a quick working out (an empty fleet at start).
        let first = kept
            .get_within(1, at(100), keep, Duration::from_secs(5), || async { Ok(1) })
            .await
            .unwrap();
        assert_eq!(first.map(|(_, v)| *v), Some(1));
        // The fleet grew: the next working out is slow. The caller gets the
        // one kept, dated, after its patience, and the new one is kept
        // when done.
        let stale = kept
            .get_within(2, at(200), keep, Duration::from_millis(20), || async {
                tokio::time::sleep(Duration::from_millis(600)).await;
                Ok(2)
            })
            .await
            .unwrap();
        assert_eq!(stale.map(|(t, v)| (t, *v)), Some((at(100), 1)));
        let mut later = None;
        for _ in 0..100 {
            later = kept
                .get_within(2, at(201), keep, Duration::from_millis(20), || async {
                    Ok(3)
                })
                .await
                .unwrap()
                .map(|(t, v)| (t, *v));
            if later.is_some_and(|(_, v)| v != 1) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(later, Some((at(200), 2)), "what the slow working out kept");
    }
}
