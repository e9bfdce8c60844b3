//! Group commit for SQLite (issue 8). SQLite takes one writer at a time, and each commit costs a
//! WAL append, lock traffic and a hop to sqlx's connection thread: committing every token on its
//! own capped token issuance at about 3,000 per second, with the CPU half idle. The token
//! endpoint's writes (access tokens, refresh tokens, refresh rotations, code redemptions) instead
//! queue for one task that applies whatever has queued up in a single transaction.
//!
//! - Each caller still waits for the commit that holds its write: nothing is answered before it
//!   is as durable as a commit of its own would have made it.
//! - Writes in a batch run one after the other, in arrival order, so they see each other exactly
//!   as serial transactions would (two rotations of one token: the second finds it rotated).
//! - No timer: a batch is whatever arrived while the previous one committed, so a lone request
//!   is not delayed, and under load batches grow by themselves.
//! - If any statement of a batch fails, the batch is rolled back and its writes are retried one by
//!   one, each in its own transaction, so a failing write never fails its neighbours.
//!
//! Checkpoints move off the commit path too. SQLite's automatic checkpoint runs inside the commit
//! that crosses the WAL threshold and fsyncs there, so every few dozen batches one commit stalled
//! for tens of milliseconds while every request queued behind it. A task now runs a passive
//! checkpoint every [`CHECKPOINT_INTERVAL`] on a reader connection; a passive checkpoint never
//! takes the write lock, and small frequent ones keep each fsync short. Measured on 2 cores
//! (`bench/`): client_credentials went from 4,900 to 7,900 tokens/s and its p99 from 28 to 16 ms.
//! The writer still checkpoints by itself if the WAL ever passes 10,000 pages.

use async_trait::async_trait;
use std::time::{Duration, Instant};

use sqlx::{AnyConnection, AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};

use super::token_writes::Inserts;
use super::{backend, Dialect};
use crate::store::{StoreError, StoreResult};

/// Most writes committed together: bounds how long a batch holds the writer.
const MAX_BATCH: usize = 256;
/// Longest the task keeps the writer connection while writes keep coming.
const HOLD_LIMIT: Duration = Duration::from_millis(20);
/// How often the WAL is copied back into the database, off the commit path. Shorter intervals
/// mean smaller fsyncs: at 100 ms, each one stalled the disk for 20 to 40 ms under load.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(25);
/// Writes waiting beyond this make callers wait to enqueue (backpressure).
const QUEUE_CAPACITY: usize = 4096;

/// A write that can share a transaction with others.
#[async_trait]
pub(super) trait Write: Send + 'static {
    type Output: Send + 'static;
    /// One statement, atomic without a transaction of its own (used when not batching).
    fn single_statement(&self) -> bool;
    /// Runs the write's statements on `conn`, inside a transaction the caller commits after
    /// flushing `inserts`, where the write leaves the rows it adds.
    async fn apply(
        &self,
        conn: &mut AnyConnection,
        inserts: &mut Inserts,
    ) -> StoreResult<Self::Output>;
}

/// A write in the queue, keeping its outcome until its transaction commits.
#[async_trait]
trait Queued: Send {
    async fn apply(&mut self, conn: &mut AnyConnection, inserts: &mut Inserts) -> StoreResult<()>;
    /// Its transaction committed: hands the outcome to the caller.
    fn committed(self: Box<Self>);
    /// It did not happen: hands `err` to the caller.
    fn failed(self: Box<Self>, err: StoreError);
}

struct Entry<W: Write> {
    write: W,
    outcome: Option<W::Output>,
    reply: oneshot::Sender<StoreResult<W::Output>>,
}

#[async_trait]
impl<W: Write> Queued for Entry<W> {
    async fn apply(&mut self, conn: &mut AnyConnection, inserts: &mut Inserts) -> StoreResult<()> {
        self.outcome = Some(self.write.apply(conn, inserts).await?);
        Ok(())
    }

    fn committed(self: Box<Self>) {
        // Always `Some` after a successful apply; otherwise dropping the sender reports a
        // stopped writer, which is the safe answer. A caller that went away ignores the reply.
        if let Some(outcome) = self.outcome {
            let _ = self.reply.send(Ok(outcome));
        }
    }

    fn failed(self: Box<Self>, err: StoreError) {
        let _ = self.reply.send(Err(err));
    }
}

/// The queue in front of the SQLite writer connection.
#[derive(Clone)]
pub(super) struct GroupCommit {
    queue: mpsc::Sender<Box<dyn Queued>>,
}

fn stopped() -> StoreError {
    StoreError::Backend("the SQLite group-commit writer stopped".into())
}

impl GroupCommit {
    /// Starts the committing task on `writer` and the checkpointing task on `readers`; both end
    /// when the last handle is dropped.
    pub fn start(writer: AnyPool, readers: AnyPool) -> Self {
        let (queue, writes) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(commit_batches(writer, writes));
        tokio::spawn(checkpoint_regularly(readers, queue.downgrade()));
        GroupCommit { queue }
    }

    /// Queues `write` and waits for the commit that holds it.
    pub async fn write<W: Write>(&self, write: W) -> StoreResult<W::Output> {
        let (reply, outcome) = oneshot::channel();
        let entry = Entry {
            write,
            outcome: None,
            reply,
        };
        self.queue
            .send(Box::new(entry))
            .await
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

async fn commit_batches(writer: AnyPool, mut writes: mpsc::Receiver<Box<dyn Queued>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while writes.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut conn = match writer.acquire().await {
            Ok(conn) => conn,
            Err(err) => {
                let err = backend(err);
                for write in batch.drain(..) {
                    write.failed(err.duplicate());
                }
                continue;
            }
        };
        // Keep the connection while writes keep coming: each return to the pool costs a ping on
        // sqlx's connection thread. Other writers get their turn within HOLD_LIMIT.
        let held_since = Instant::now();
        loop {
            commit_or_split(&mut conn, &mut batch).await;
            if held_since.elapsed() >= HOLD_LIMIT {
                break;
            }
            while batch.len() < MAX_BATCH {
                match writes.try_recv() {
                    Ok(write) => batch.push(write),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                break;
            }
        }
    }
}

/// Commits `batch` together, or, if that fails, each of its writes alone; answers every caller
/// and leaves `batch` empty.
async fn commit_or_split(conn: &mut AnyConnection, batch: &mut Vec<Box<dyn Queued>>) {
    match commit(conn, batch).await {
        Ok(()) => batch.drain(..).for_each(|write| write.committed()),
        Err(err) if batch.len() == 1 => {
            if let Some(write) = batch.pop() {
                write.failed(err);
            }
        }
        Err(err) => {
            tracing::debug!(error = %err, writes = batch.len(),
                "group commit failed; retrying its writes one by one");
            for mut write in batch.drain(..) {
                match commit(conn, std::slice::from_mut(&mut write)).await {
                    Ok(()) => write.committed(),
                    Err(err) => write.failed(err),
                }
            }
        }
    }
}

/// Applies `batch` in one transaction: all of it commits, or none.
async fn commit(conn: &mut AnyConnection, batch: &mut [Box<dyn Queued>]) -> StoreResult<()> {
    let mut tx = conn
        .begin_with(Dialect::Sqlite.begin_write())
        .await
        .map_err(backend)?;
    let mut inserts = Inserts::default();
    for write in batch.iter_mut() {
        write.apply(&mut tx, &mut inserts).await?;
    }
    inserts.flush(&mut tx).await?;
    tx.commit().await.map_err(backend)
}

async fn checkpoint_regularly(readers: AnyPool, running: mpsc::WeakSender<Box<dyn Queued>>) {
    let mut ticks = tokio::time::interval(CHECKPOINT_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if running.upgrade().is_none() {
            return;
        }
        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&readers)
            .await
        {
            tracing::warn!(error = %err, "SQLite checkpoint failed; the writer checkpoints by itself past 10,000 WAL pages");
        }
    }
}
