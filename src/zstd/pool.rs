//! A fixed pool of worker threads fed through a bounded queue: the compressor and the
//! decompressor hand it whole frames and get the results back (in completion order; the
//! callers put them back in stream order).
use crate::error::{Error, Result};
use std::prelude::v1::*;
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Worker threads, each with its own state `S` (a zstd context), turning jobs `J` into
/// results `D`. Dropping the pool stops and joins the threads.
pub(crate) struct Pool<J: Send + 'static, D: Send + 'static> {
    jobs: Option<SyncSender<J>>,
    done: Receiver<D>,
    workers: Vec<JoinHandle<()>>,
    /// Jobs sent whose results were not received yet.
    pub(crate) in_flight: usize,
}

fn stopped() -> Error {
    Error::message(format_args!("a zstd worker thread stopped"))
}

impl<J: Send + 'static, D: Send + 'static> Pool<J, D> {
    /// Starts `threads` workers; each calls `state()` once, then `work` for every job.
    pub(crate) fn new<S: 'static>(
        threads: usize,
        state: impl Fn() -> S + Send + Clone + 'static,
        work: fn(&mut S, J) -> D,
    ) -> Result<Self> {
        let (jobs_tx, jobs_rx) = sync_channel::<J>(threads);
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let (done_tx, done_rx) = channel::<D>();
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let rx = Arc::clone(&jobs_rx);
            let tx = done_tx.clone();
            let state = state.clone();
            let h = std::thread::Builder::new()
                .name(std::format!("zstd-{i}"))
                .spawn(move || {
                    let mut s = state();
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        if tx.send(work(&mut s, job)).is_err() {
                            return;
                        }
                    }
                })
                .map_err(|_| Error::message(format_args!("cannot start a zstd worker thread")))?;
            workers.push(h);
        }
        Ok(Pool {
            jobs: Some(jobs_tx),
            done: done_rx,
            workers,
            in_flight: 0,
        })
    }

    /// Queues a job (waits while the queue is full).
    pub(crate) fn send(&mut self, job: J) -> Result<()> {
        self.jobs
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())?;
        self.in_flight += 1;
        Ok(())
    }

    /// The next result to arrive: waits for one if `wait`, else only takes one that is there.
    pub(crate) fn recv(&mut self, wait: bool) -> Result<Option<D>> {
        if self.in_flight == 0 {
            return Ok(None);
        }
        let d = if wait {
            Some(self.done.recv().map_err(|_| stopped())?)
        } else {
            self.done.try_recv().ok()
        };
        if d.is_some() {
            self.in_flight -= 1;
        }
        Ok(d)
    }
}

impl<J: Send + 'static, D: Send + 'static> Drop for Pool<J, D> {
    fn drop(&mut self) {
        self.jobs = None;
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}
