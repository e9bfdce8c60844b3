//! This machine's argon2 limit, for `bench/run.sh`: password verifications per second on all cores,
//! through the hasher and parameters the login uses. Prints one number.

use std::time::{Duration, Instant};

use tessera::account::password::PasswordHasher;

const PASSWORD: &str = "a benchmark password";
const MEASURE_FOR: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let hasher = PasswordHasher::for_this_machine();
    let phc = hasher.hash(PASSWORD.into()).await?;
    let cores = std::thread::available_parallelism()?.get();
    let start = Instant::now();
    let workers: Vec<_> = (0..cores)
        .map(|_| {
            let (hasher, phc) = (hasher.clone(), phc.clone());
            tokio::spawn(async move {
                let mut verified = 0u32;
                while start.elapsed() < MEASURE_FOR {
                    anyhow::ensure!(hasher.verify(PASSWORD.into(), Some(phc.clone())).await?);
                    verified += 1;
                }
                Ok(verified)
            })
        })
        .collect();
    let mut verified = 0;
    for worker in workers {
        verified += worker.await??;
    }
    println!("{:.1}", f64::from(verified) / start.elapsed().as_secs_f64());
    Ok(())
}
