//! RFC 4733 telephone-event receive: DTMF digits sent in RTP. An event is reported once, when
//! its first end packet arrives; the retransmitted end packets (same timestamp) are ignored.

/// A DTMF digit received in RTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtmfEvent {
    pub digit: char,
    pub duration_ms: u32,
    pub volume_dbm0: i8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DtmfError {
    #[error("telephone-event payload must be 4 bytes, got {0}")]
    Length(usize),
}

#[derive(Debug, Default)]
pub struct DtmfReceiver {
    last_ended: Option<u32>,
}

const DIGITS: &[u8; 16] = b"0123456789*#ABCD";

impl DtmfReceiver {
    /// Feeds one telephone-event payload with its RTP timestamp.
    pub fn handle(
        &mut self,
        timestamp: u32,
        payload: &[u8],
        clock_rate: u32,
    ) -> Result<Option<DtmfEvent>, DtmfError> {
        let [event, flags, d0, d1] = payload
            .get(..4)
            .and_then(|p| p.try_into().ok())
            .ok_or(DtmfError::Length(payload.len()))?;
        if payload.len() != 4 {
            return Err(DtmfError::Length(payload.len()));
        }
        let end = flags & 0x80 != 0;
        if !end || self.last_ended == Some(timestamp) {
            return Ok(None);
        }
        self.last_ended = Some(timestamp);
        let Some(&digit) = DIGITS.get(event as usize) else {
            return Ok(None);
        };
        let duration = u16::from_be_bytes([d0, d1]) as u32;
        Ok(Some(DtmfEvent {
            digit: digit as char,
            duration_ms: duration * 1000 / clock_rate.max(1),
            volume_dbm0: -((flags & 0x3F) as i8),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_digit_despite_retransmitted_ends() {
        let mut r = DtmfReceiver::default();
        assert_eq!(r.handle(1000, &[5, 0x0A, 0x01, 0x40], 8000), Ok(None));
        let e = r
            .handle(1000, &[5, 0x8A, 0x03, 0x20], 8000)
            .unwrap()
            .unwrap();
        assert_eq!(
            e,
            DtmfEvent {
                digit: '5',
                duration_ms: 100,
                volume_dbm0: -10
            }
        );
        assert_eq!(r.handle(1000, &[5, 0x8A, 0x03, 0x20], 8000), Ok(None));
        assert_eq!(r.handle(1000, &[5, 0x8A, 0x03, 0x20], 8000), Ok(None));
        let e = r
            .handle(2600, &[11, 0x80, 0x02, 0x80], 8000)
            .unwrap()
            .unwrap();
        assert_eq!(e.digit, '#');
        assert_eq!(r.handle(0, &[1, 2, 3], 8000), Err(DtmfError::Length(3)));
        assert_eq!(
            r.handle(0, &[1, 2, 3, 4, 5], 8000),
            Err(DtmfError::Length(5))
        );
    }
}
