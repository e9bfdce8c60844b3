//! User passwords: argon2id with the OWASP parameters (m = 19 MiB, t = 2, p = 1). Hashing is
//! deliberately slow, so it runs on a few threads of its own, one per core: a burst of logins
//! queues for them instead of starving the async workers that serve every other request.
//!
//! Not on tokio's blocking pool: that pool grows to hundreds of threads, and glibc keeps each
//! thread's freed 19 MiB in that thread's arena. Under a login burst the server's RSS reached
//! 560 MB (bench/); with fixed threads it stays at about one argon2 block per core.

use std::cell::RefCell;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{
    self, Decimal, Ident, Output, ParamsString, PasswordHash, PasswordHasher as _,
    PasswordVerifier as _, Salt, SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

use crate::account::password_rule::{self, Weak};
use crate::error::{Error, Result};

fn argon2() -> ReusingArgon2 {
    let params = Params::new(19 * 1024, 2, 1, None).expect("OWASP argon2id parameters are valid");
    ReusingArgon2 {
        algorithm: Algorithm::Argon2id,
        version: Version::V0x13,
        params,
    }
}

thread_local! {
    /// This thread's argon2 working memory, allocated once and reused by every hash it computes.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Working memory kept between hashes: the OWASP parameters' 19 MiB (a block is 1 KiB). A larger
/// block, for an imported hash with a larger `m`, is freed after use.
const KEPT_BLOCKS: usize = 19 * 1024;

/// argon2 behind the `password_hash` traits, as `Argon2` itself, except that it computes in the
/// thread's reused [`MEMORY`] (`hash_password_into_with_memory`) instead of allocating 19 MiB per
/// hash. The allocations were what glibc kept: a login burst took the RSS to 560 MB, and to
/// 215 MB even on fixed threads. Reused memory is also never page-faulted in again.
struct ReusingArgon2 {
    algorithm: Algorithm,
    version: Version,
    params: Params,
}

impl password_hash::PasswordHasher for ReusingArgon2 {
    type Params = Params;

    fn hash_password<'a>(
        &self,
        password: &[u8],
        salt: impl Into<Salt<'a>>,
    ) -> password_hash::Result<PasswordHash<'a>> {
        let salt = salt.into();
        let mut salt_buffer = [0u8; Salt::MAX_LENGTH];
        let salt_bytes = salt.decode_b64(&mut salt_buffer)?;
        let argon2 = Argon2::new(self.algorithm, self.version, self.params.clone());
        let blocks = self.params.block_count();
        let output_len = self
            .params
            .output_len()
            .unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let output = Output::init_with(output_len, |out| {
            MEMORY.with_borrow_mut(|memory| {
                if memory.len() < blocks {
                    memory.resize(blocks, Block::default());
                }
                let hashed = argon2.hash_password_into_with_memory(
                    password,
                    salt_bytes,
                    out,
                    &mut memory[..blocks],
                );
                if memory.len() > KEPT_BLOCKS {
                    *memory = Vec::new();
                }
                hashed.map_err(Into::into)
            })
        })?;
        Ok(PasswordHash {
            algorithm: self.algorithm.ident(),
            version: Some(self.version.into()),
            params: ParamsString::try_from(&self.params)?,
            salt: Some(salt),
            hash: Some(output),
        })
    }

    /// Used by `verify_password` with the stored hash's own algorithm, version and parameters.
    fn hash_password_customized<'a>(
        &self,
        password: &[u8],
        algorithm: Option<Ident<'a>>,
        version: Option<Decimal>,
        params: Params,
        salt: impl Into<Salt<'a>>,
    ) -> password_hash::Result<PasswordHash<'a>> {
        ReusingArgon2 {
            algorithm: algorithm
                .map(Algorithm::try_from)
                .transpose()?
                .unwrap_or_default(),
            version: version
                .map(Version::try_from)
                .transpose()?
                .unwrap_or_default(),
            params,
        }
        .hash_password(password, salt)
    }
}

/// A hash of a random password, verified against when the user does not exist, so an unknown user
/// name costs the same time as a wrong password and does not reveal itself.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_blocking(&crate::secret::generate()).expect("hashing a decoy"))
}

fn hash_blocking(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(Error::internal)
}

fn verify_blocking(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs argon2 work on its own threads, off the async workers; knows the rule new passwords
/// meet ([`password_rule`]).
#[derive(Clone)]
pub struct PasswordHasher {
    jobs: mpsc::Sender<Job>,
    min_length: usize,
}

impl PasswordHasher {
    /// Starts `threads` hashing threads; they end when the last clone is dropped.
    pub fn new(threads: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || work_through(&queue))
                .expect("starting a password hashing thread");
        }
        PasswordHasher {
            jobs,
            min_length: password_rule::DEFAULT_MIN_LENGTH,
        }
    }

    /// With `TESSERA_PASSWORD_MIN_LENGTH` for new passwords.
    pub fn with_min_length(self, min_length: usize) -> Self {
        PasswordHasher { min_length, ..self }
    }

    /// Whether a user may choose `password` ([`password_rule::check`]); `context` is what the
    /// account is known by (its name, its address), which makes a poor password.
    pub fn check_new(&self, password: &str, context: &[&str]) -> std::result::Result<(), Weak> {
        password_rule::check(self.min_length, password, context)
    }

    /// One thread per core: argon2 is CPU-bound, more threads would only add queueing inside.
    pub fn for_this_machine() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let (reply, outcome) = oneshot::channel();
        let job: Job = Box::new(move || {
            // A request that went away while queued needs no answer: skip its hashing.
            if !reply.is_closed() {
                let _ = reply.send(work());
            }
        });
        self.jobs
            .send(job)
            .map_err(|_| Error::internal("the password hashing threads stopped"))?;
        outcome.await.map_err(Error::internal)
    }

    pub async fn hash(&self, password: String) -> Result<String> {
        self.run(move || hash_blocking(&password)).await?
    }

    /// Checks `password` against `phc`; with no hash (unknown user) it spends the same time on a
    /// decoy and answers false.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool> {
        self.run(move || match phc {
            Some(phc) => verify_blocking(&password, &phc),
            None => {
                verify_blocking(&password, decoy_hash());
                false
            }
        })
        .await
    }
}

/// A hashing thread: takes jobs until every sender is gone.
fn work_through(queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        // The lock is held only while waiting; the job runs after it is released.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match job {
            // A panicking job drops its reply (its caller gets an error); the thread stays.
            Ok(job) => drop(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))),
            Err(_) => return,
        }
    }
}

/// Whether `phc` is an argon2 PHC string we can verify (for hashes supplied by operators).
pub fn is_argon2_phc(phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| parsed.algorithm.as_str().starts_with("argon2"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = PasswordHasher::new(1);
        let hash = hasher.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(is_argon2_phc(&hash));
        assert!(hasher
            .verify("correct horse".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!hasher.verify("wrong".into(), Some(hash)).await.unwrap());
        assert!(!hasher.verify("correct horse".into(), None).await.unwrap());
    }

    /// Reusing memory must not change a single bit: hashes of the argon2 crate itself, with other
    /// variants and parameters (operators import such hashes), verify here, and ours verify there.
    #[test]
    fn hashes_agree_with_the_argon2_crate() {
        let variants = [
            (
                Algorithm::Argon2id,
                Params::new(19 * 1024, 2, 1, None).unwrap(),
            ),
            (
                Algorithm::Argon2i,
                Params::new(8 * 1024, 3, 2, Some(24)).unwrap(),
            ),
            (
                Algorithm::Argon2d,
                Params::new(4 * 1024, 1, 1, None).unwrap(),
            ),
        ];
        for (algorithm, params) in variants {
            let theirs = Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(b"pass phrase", &SaltString::generate(&mut OsRng))
                .unwrap()
                .to_string();
            assert!(verify_blocking("pass phrase", &theirs), "{theirs}");
            assert!(!verify_blocking("pass phrasE", &theirs), "{theirs}");
        }
        let ours = hash_blocking("pass phrase").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"pass phrase", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"pass phrasE", &parsed)
            .is_err());
    }
}
