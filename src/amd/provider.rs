//! The engine switch: every AMD engine implements [`AmdProvider`] and emits the same events.
//! `ACTIVE_AMD_PROVIDER` (config key `amd_provider`) picks one per process; a campaign's
//! `mode.amdProvider` overrides it. The external engine streams over a socket, so only its
//! pure parts live here ([`external`]); `runtime::call::amd_external` connects it per call.

#[path = "external/mod.rs"]
pub mod external;

use super::{Amd, AmdConfig, AmdEvent, BeepModel};
use crate::audio::Frame;
use crate::config::AmdProviderKind;

/// A streaming detector for one call.
pub trait AmdProvider: Send {
    /// Engine name for records and logs.
    fn name(&self) -> &'static str;
    /// Feeds one 20 ms frame of answered audio.
    fn process(&mut self, frame: &Frame) -> Option<AmdEvent>;
    /// The call or recording ended; returns what is still owed, then `None`.
    fn finish(&mut self) -> Option<AmdEvent>;
    /// Nothing more will be reported.
    fn is_done(&self) -> bool;
}

impl AmdProvider for Amd {
    fn name(&self) -> &'static str {
        "builtin"
    }

    fn process(&mut self, frame: &Frame) -> Option<AmdEvent> {
        Amd::process(self, frame)
    }

    fn finish(&mut self) -> Option<AmdEvent> {
        Amd::finish(self)
    }

    fn is_done(&self) -> bool {
        Amd::is_done(self)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProviderError {
    #[error(
        "the external AMD engine streams over a socket: a call task connects it \
         (runtime::call::amd_external), not this pure constructor"
    )]
    ExternalNeedsRuntime,
}

/// Builds the detector for one call from the configured engine.
pub fn create(
    kind: AmdProviderKind,
    config: &AmdConfig,
    model: Option<BeepModel>,
) -> Result<Box<dyn AmdProvider>, ProviderError> {
    match kind {
        AmdProviderKind::Builtin => Ok(Box::new(Amd::new(config.clone(), model))),
        AmdProviderKind::External => Err(ProviderError::ExternalNeedsRuntime),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{Frame, SampleTime};

    #[test]
    fn builtin_is_selected_and_behaves_like_amd() {
        let mut p = create(AmdProviderKind::Builtin, &AmdConfig::default(), None).unwrap();
        assert_eq!(p.name(), "builtin");
        let mut last = None;
        for i in 0..500u64 {
            if let Some(e) = p.process(&Frame::silent(SampleTime(i * 160))) {
                last = Some(e);
            }
        }
        let event = last.expect("silence decides by the analysis limit");
        assert_eq!(event.kind.as_str(), "unknown");
        assert!(p.is_done());
    }

    #[test]
    fn external_is_connected_by_the_runtime() {
        let err = create(AmdProviderKind::External, &AmdConfig::default(), None).err();
        assert_eq!(err, Some(ProviderError::ExternalNeedsRuntime));
    }
}
