//! The log subscriber: text, or JSON lines (`TESSERA_LOG_FORMAT=json`) whose every line of a
//! request carries its `request_id` (the request span's fields). What is logged never includes a
//! secret: handlers log ids and outcomes, and the request span records only method and path.

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// A subscriber filtering with `filter` (an `EnvFilter` directive, `info` if it does not parse)
/// and writing to `writer`.
pub fn subscriber<W>(
    filter: &str,
    json: bool,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if json {
        Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .finish(),
        )
    } else {
        Box::new(builder.finish())
    }
}
