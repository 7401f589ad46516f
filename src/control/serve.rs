//! How the control socket and the metrics endpoint serve their clients: one thread each, running a
//! single-threaded async loop that holds every connection as a task (not a thread), at most a fixed
//! number at once, each with whole-request deadlines. Handler work runs on a small, bounded pool of
//! blocking threads, so idle, slow or abusive clients cost a task and a buffer, never a thread.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{oneshot, Semaphore};

/// Most threads running handler calls (status, reload, diagnose, metrics rendering) at the same
/// time, per server: enough that a slow `diagnose` does not hold up the BGP helper's polls.
pub const HANDLER_THREADS: usize = 8;

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A listener the accept loop can take connections from.
pub(crate) trait Accept {
    /// The connection type.
    type Conn: Send + 'static;
    /// Wait for the next connection.
    fn accept_conn(&self) -> impl Future<Output = io::Result<Self::Conn>>;
}

impl Accept for tokio::net::UnixListener {
    type Conn = tokio::net::UnixStream;
    async fn accept_conn(&self) -> io::Result<Self::Conn> {
        self.accept().await.map(|(s, _)| s)
    }
}

impl Accept for tokio::net::TcpListener {
    type Conn = tokio::net::TcpStream;
    async fn accept_conn(&self) -> io::Result<Self::Conn> {
        self.accept().await.map(|(s, _)| s)
    }
}

/// A server's thread; stopping it ends the accept loop and every connection task.
#[derive(Debug)]
pub(crate) struct ServerThread {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Run `serve` (given the stop signal) on a new thread named `name`, inside a single-threaded
    /// async runtime with at most [`HANDLER_THREADS`] blocking threads.
    pub(crate) fn spawn<F, Fut>(name: &str, serve: F) -> io::Result<ServerThread>
    where
        F: FnOnce(oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .max_blocking_threads(HANDLER_THREADS)
            .thread_name(format!("{name}-work"))
            .build()?;
        let (tx, rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                runtime.block_on(serve(rx));
                // A handler call still running (e.g. a long reload) is not waited for.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(ServerThread {
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// Signal the loop to stop and wait for the thread.
    pub(crate) fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accept connections from `listener` until `stop` fires: each runs `serve` as a task while fewer
/// than `max` are open, else `busy` (which should answer briefly and close).
pub(crate) async fn accept_loop<L, S, SF, B, BF>(
    listener: L,
    max: usize,
    serve: S,
    busy: B,
    mut stop: oneshot::Receiver<()>,
) where
    L: Accept,
    S: Fn(L::Conn) -> SF,
    SF: Future<Output = ()> + 'static,
    B: Fn(L::Conn) -> BF,
    BF: Future<Output = ()> + 'static,
{
    let slots = Arc::new(Semaphore::new(max));
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            loop {
                let conn = tokio::select! {
                    _ = &mut stop => break,
                    c = listener.accept_conn() => c,
                };
                let conn = match conn {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                match Arc::clone(&slots).try_acquire_owned() {
                    Ok(permit) => {
                        let task = serve(conn);
                        tokio::task::spawn_local(async move {
                            task.await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        tokio::task::spawn_local(busy(conn));
                    }
                }
            }
        })
        .await;
}

/// Run `work` on the bounded blocking pool; `None` if it panicked.
pub(crate) async fn off_thread<T, W>(work: W) -> Option<T>
where
    T: Send + 'static,
    W: FnOnce() -> T + Send + 'static,
{
    tokio::task::spawn_blocking(work).await.ok()
}
