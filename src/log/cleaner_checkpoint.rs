//! What the log cleaner has done to one log, kept in its state and in a small file beside the
//! segments (see `log_cleaner`).

/// File of the cleaner's checkpoint in the partition directory: `<clean offset> <horizon>`.
pub(super) const CHECKPOINT_FILE: &str = ".cleaner_checkpoint";

/// The log cleaner's progress on one log.
#[derive(Debug, Clone, Default)]
pub(crate) struct CleanerCheckpoint {
    /// Records below this offset have been cleaned.
    pub(super) clean_offset: i64,
    /// The earliest delete horizon of a tombstone the last pass kept.
    pub(super) horizon_due_ms: Option<i64>,
    /// `CHECKPOINT_FILE` has been read (at the first pass after the log opened).
    pub(super) loaded: bool,
}

impl CleanerCheckpoint {
    pub(super) fn encode(&self) -> String {
        format!(
            "{} {}",
            self.clean_offset,
            self.horizon_due_ms.unwrap_or(-1)
        )
    }

    pub(super) fn decode(text: &str) -> Option<(i64, Option<i64>)> {
        let mut fields = text.split_whitespace().map(str::parse::<i64>);
        let clean_offset = fields.next()?.ok()?;
        let horizon_ms = fields.next()?.ok()?;
        Some((clean_offset, (horizon_ms >= 0).then_some(horizon_ms)))
    }
}
