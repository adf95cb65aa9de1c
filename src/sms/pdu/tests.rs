//! Unit tests of the SMPP PDU codec: byte layouts against SMPP 3.4, framing, malformed and
//! unknown input, and property tests that decoding never panics and round-trips. Tests must
//! not open sockets.

use proptest::prelude::*;

use super::decoder::be_u32;
use super::*;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn bind() -> Pdu {
    Pdu::new(
        1,
        Body::BindTransceiver(Bind {
            system_id: "trunx".into(),
            password: "secret".into(),
            system_type: "".into(),
            interface_version: INTERFACE_VERSION_34,
            addr_ton: 0,
            addr_npi: 0,
            address_range: "".into(),
        }),
    )
}

#[test]
fn bind_transceiver_matches_the_3_4_layout() {
    // Hand-assembled from SMPP 3.4 §4.1.5: header, system_id "trunx\0", password
    // "secret\0", system_type "\0", interface_version 0x34, addr_ton 0, addr_npi 0,
    // address_range "\0".
    let expected = hex("00000022 00000009 00000000 00000001
         7472756e7800 73656372657400 00 34 00 00 00");
    let bytes = encode(&bind()).unwrap();
    assert_eq!(bytes, expected);
    assert_eq!(
        decode(&expected, DEFAULT_MAX_PDU_BYTES).unwrap(),
        Some((bind(), 34))
    );
}

#[test]
fn submit_sm_with_udh_matches_the_3_4_layout() {
    let udh_and_text = hex("050003 2a 02 01 48 69"); // concat ref 0x2a, 2 parts, part 1, "Hi"
    let pdu = Pdu::new(
        7,
        Body::SubmitSm(ShortMessage {
            source: Address {
                ton: 1,
                npi: 1,
                addr: "15550001111".into(),
            },
            destination: Address {
                ton: 1,
                npi: 1,
                addr: "15550002222".into(),
            },
            esm_class: 0x40,
            registered_delivery: 1,
            data_coding: 0,
            short_message: udh_and_text,
            ..ShortMessage::default()
        }),
    );
    // SMPP 3.4 §4.4.1 in order: service_type "\0"; src ton/npi 01 01 + "15550001111\0";
    // dst ton/npi 01 01 + "15550002222\0"; esm_class 40; protocol_id 00; priority 00;
    // schedule "\0"; validity "\0"; registered_delivery 01; replace 00; data_coding 00;
    // sm_default_msg_id 00; sm_length 08; short_message.
    let expected = hex("0000003F 00000004 00000000 00000007
         00
         01 01 313535353030303131313100
         01 01 313535353030303232323200
         40 00 00 00 00 01 00 00 00
         08 0500032a02014869");
    assert_eq!(encode(&pdu).unwrap(), expected);
    assert_eq!(
        decode(&expected, DEFAULT_MAX_PDU_BYTES).unwrap(),
        Some((pdu, expected.len()))
    );
}

#[test]
fn deliver_sm_keeps_tlvs() {
    let pdu = Pdu::new(
        9,
        Body::DeliverSm(ShortMessage {
            esm_class: 0x04,
            short_message: b"id:abc stat:DELIVRD".to_vec(),
            tlvs: vec![
                Tlv {
                    tag: tag::RECEIPTED_MESSAGE_ID,
                    value: b"abc\0".to_vec(),
                },
                Tlv {
                    tag: tag::MESSAGE_STATE,
                    value: vec![2],
                },
                Tlv {
                    tag: tag::NETWORK_ERROR_CODE,
                    value: vec![3, 0, 0x22],
                },
            ],
            ..ShortMessage::default()
        }),
    );
    let bytes = encode(&pdu).unwrap();
    // The TLV section is tag, length, value in network order.
    assert!(bytes.ends_with(&hex("001E 0004 61626300 0427 0001 02 0423 0003 030022")));
    let (back, used) = decode(&bytes, DEFAULT_MAX_PDU_BYTES).unwrap().unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(back, pdu);
}

#[test]
fn framer_waits_for_the_whole_pdu_and_reports_consumed() {
    let a = encode(&Pdu::new(5, Body::EnquireLink)).unwrap();
    let b = encode(&Pdu::new(6, Body::UnbindResp)).unwrap();
    let stream = [a.clone(), b.clone()].concat();
    for cut in 0..a.len() {
        assert_eq!(decode(&stream[..cut], 1024).unwrap(), None, "cut at {cut}");
    }
    let (first, used) = decode(&stream, 1024).unwrap().unwrap();
    assert_eq!((first.sequence, used), (5, 16));
    let (second, used2) = decode(&stream[used..], 1024).unwrap().unwrap();
    assert_eq!((second.body, used2), (Body::UnbindResp, b.len()));
}

#[test]
fn bad_lengths_lose_framing_and_nack_rinvcmdlen() {
    let short = hex("0000000F 00000015 00000000 00000003");
    let err = decode(&short, 1024).unwrap_err();
    assert_eq!(
        err,
        DecodeError::LengthTooSmall {
            length: 15,
            sequence: Some(3)
        }
    );
    assert_eq!(err.skip(), None);
    assert_eq!(
        err.nack(),
        Some(Pdu::generic_nack(3, CommandStatus::RINVCMDLEN))
    );
    // Detected from the length field alone, before the rest arrives.
    let huge = hex("00100000");
    assert!(matches!(
        decode(&huge, DEFAULT_MAX_PDU_BYTES),
        Err(DecodeError::LengthTooLarge {
            length: 0x0010_0000,
            sequence: None,
            ..
        })
    ));
}

#[test]
fn unknown_command_is_skippable_and_nacks_rinvcmdid_with_its_sequence() {
    // query_sm (0x03) is valid SMPP but not something this ESME handles.
    let pdu = hex("00000014 00000003 00000000 0000002A 41424300");
    let err = decode(&pdu, 1024).unwrap_err();
    assert_eq!(err.skip(), Some(20));
    assert_eq!(
        err.nack(),
        Some(Pdu::generic_nack(42, CommandStatus::RINVCMDID))
    );
}

#[test]
fn malformed_bodies_are_typed() {
    // enquire_link with a stray body octet.
    let trailing = hex("00000011 00000015 00000000 00000004 00");
    let err = decode(&trailing, 1024).unwrap_err();
    assert_eq!(
        err.nack(),
        Some(Pdu::generic_nack(4, CommandStatus::RINVMSGLEN))
    );
    // submit_sm_resp with a message_id missing its NUL: no nack for a response.
    let resp = hex("00000013 80000004 00000000 00000008 414243");
    let err = decode(&resp, 1024).unwrap_err();
    assert!(matches!(
        err,
        DecodeError::Malformed {
            reason: Malformed::Truncated,
            ..
        }
    ));
    assert_eq!(err.nack(), None);
    // A system_id of 16 octets without NUL is longer than the field allows.
    let mut long = hex("00000000 00000009 00000000 00000001");
    long.extend_from_slice(&[b'a'; 20]);
    long.push(0);
    let n = long.len() as u32;
    long[..4].copy_from_slice(&n.to_be_bytes());
    assert!(matches!(
        decode(&long, 1024),
        Err(DecodeError::Malformed {
            reason: Malformed::UnterminatedString("system_id"),
            ..
        })
    ));
}

#[test]
fn error_responses_may_come_without_a_body() {
    let pdu = hex("00000010 80000004 00000058 00000009");
    let (p, _) = decode(&pdu, 1024).unwrap().unwrap();
    assert_eq!(p.status, CommandStatus::RTHROTTLED);
    assert_eq!(
        p.body,
        Body::SubmitSmResp {
            message_id: String::new()
        }
    );
}

#[test]
fn status_names() {
    assert_eq!(CommandStatus::RTHROTTLED.0, 0x58);
    assert_eq!(CommandStatus::RMSGQFUL.0, 0x14);
    assert_eq!(CommandStatus::RTHROTTLED.name(), "ESME_RTHROTTLED");
    assert_eq!(CommandStatus::RINVCMDID.name(), "ESME_RINVCMDID");
    assert_eq!(CommandStatus(0x400).name(), "UNKNOWN");
    assert!(CommandStatus::RMSGQFUL.is_throttle());
    assert!(!CommandStatus::RSYSERR.is_throttle());
}

#[test]
fn encode_refuses_fields_the_wire_cannot_hold() {
    let mut p = bind();
    if let Body::BindTransceiver(b) = &mut p.body {
        b.password = "123456789".into();
    }
    assert_eq!(
        encode(&p),
        Err(EncodeError::FieldTooLong {
            field: "password",
            len: 9,
            max: 8
        })
    );
    let sm = Pdu::new(
        1,
        Body::SubmitSm(ShortMessage {
            short_message: vec![0; 255],
            ..ShortMessage::default()
        }),
    );
    assert!(matches!(
        encode(&sm),
        Err(EncodeError::FieldTooLong {
            field: "short_message",
            ..
        })
    ));
}

#[test]
fn password_never_prints() {
    let shown = format!("{:?}", bind());
    assert!(!shown.contains("secret"), "{shown}");
    assert!(shown.contains("****"));
}

fn latin1(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(1u8..=255, 0..max)
        .prop_map(|v| v.into_iter().map(|b| b as char).collect())
}

fn tlvs() -> impl Strategy<Value = Vec<Tlv>> {
    proptest::collection::vec(
        (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(tag, value)| Tlv { tag, value }),
        0..4,
    )
}

fn short_message() -> impl Strategy<Value = ShortMessage> {
    (
        (
            latin1(6),
            any::<(u8, u8)>(),
            latin1(21),
            any::<(u8, u8)>(),
            latin1(21),
        ),
        any::<(u8, u8, u8, u8, u8, u8, u8)>(),
        (latin1(17), latin1(17)),
        proptest::collection::vec(any::<u8>(), 0..=254),
        tlvs(),
    )
        .prop_map(
            |((st, s, sa, d, da), f, (sched, valid), sm, tlvs)| ShortMessage {
                service_type: st,
                source: Address {
                    ton: s.0,
                    npi: s.1,
                    addr: sa,
                },
                destination: Address {
                    ton: d.0,
                    npi: d.1,
                    addr: da,
                },
                esm_class: f.0,
                protocol_id: f.1,
                priority_flag: f.2,
                schedule_delivery_time: sched,
                validity_period: valid,
                registered_delivery: f.3,
                replace_if_present_flag: f.4,
                data_coding: f.5,
                sm_default_msg_id: f.6,
                short_message: sm,
                tlvs,
            },
        )
}

fn any_pdu() -> impl Strategy<Value = Pdu> {
    let body = prop_oneof![
        (
            latin1(16),
            latin1(9),
            latin1(13),
            any::<(u8, u8, u8)>(),
            latin1(41)
        )
            .prop_map(
                |(system_id, password, system_type, (v, t, n), address_range)| {
                    Body::BindTransceiver(Bind {
                        system_id,
                        password,
                        system_type,
                        interface_version: v,
                        addr_ton: t,
                        addr_npi: n,
                        address_range,
                    })
                }
            ),
        (latin1(16), tlvs())
            .prop_map(|(system_id, tlvs)| Body::BindTransceiverResp(BindResp { system_id, tlvs })),
        short_message().prop_map(Body::SubmitSm),
        short_message().prop_map(Body::DeliverSm),
        latin1(65).prop_map(|message_id| Body::SubmitSmResp { message_id }),
        latin1(65).prop_map(|message_id| Body::DeliverSmResp { message_id }),
        Just(Body::EnquireLink),
        Just(Body::EnquireLinkResp),
        Just(Body::Unbind),
        Just(Body::UnbindResp),
        Just(Body::GenericNack),
    ];
    (any::<u32>(), any::<u32>(), body).prop_filter_map(
        "fields within their maxima",
        |(status, sequence, body)| {
            let pdu = Pdu {
                status: CommandStatus(status),
                sequence,
                body,
            };
            encode(&pdu).ok().map(|_| pdu)
        },
    )
}

proptest! {
    #[test]
    fn encode_decode_round_trips(pdu in any_pdu()) {
        let bytes = encode(&pdu).unwrap();
        let decoded = decode(&bytes, DEFAULT_MAX_PDU_BYTES).unwrap();
        // An error response with an empty body decodes as the default body: same bytes.
        let (back, used) = decoded.unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(encode(&back).unwrap(), bytes);
    }

    #[test]
    fn random_buffers_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_decoded_consistency(&buf);
    }

    #[test]
    fn random_bodies_under_known_commands_never_panic(
        id in prop::sample::select(vec![
            command::BIND_TRANSCEIVER, command::BIND_TRANSCEIVER_RESP, command::SUBMIT_SM,
            command::SUBMIT_SM_RESP, command::DELIVER_SM, command::DELIVER_SM_RESP,
            command::ENQUIRE_LINK, command::UNBIND, command::GENERIC_NACK, 0x0000_0103,
        ]),
        status in prop::sample::select(vec![0u32, 0x58]),
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        // A well-formed header in front of random octets reaches the body parsers.
        let mut buf = Vec::with_capacity(HEADER_LEN + body.len());
        buf.extend_from_slice(&((HEADER_LEN + body.len()) as u32).to_be_bytes());
        buf.extend_from_slice(&id.to_be_bytes());
        buf.extend_from_slice(&status.to_be_bytes());
        buf.extend_from_slice(&1u32.to_be_bytes());
        buf.extend_from_slice(&body);
        check_decoded_consistency(&buf);
    }

    #[test]
    fn mutated_valid_pdus_never_panic(
        pdu in any_pdu(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode(&pdu).unwrap();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        check_decoded_consistency(&bytes);
        let end = cut.index(bytes.len() + 1);
        check_decoded_consistency(&bytes[..end]);
    }
}

/// Whatever decodes re-encodes to the octets it consumed (Latin-1 strings keep this exact),
/// and every skippable error reports a frame inside the declared bound.
fn check_decoded_consistency(buf: &[u8]) {
    match decode(buf, 512) {
        Ok(Some((pdu, used))) => {
            assert!(used >= HEADER_LEN && used <= buf.len());
            if let Ok(again) = encode(&pdu) {
                // Only an error response with an empty body may differ (it gains a body).
                if !(pdu.status.0 != 0 && again.len() != used) {
                    assert_eq!(&again[..], &buf[..used]);
                }
            }
        }
        Ok(None) => {
            assert!(buf.len() < 4 || (buf.len() as u64) < u64::from(be_u32(buf, 0).unwrap()))
        }
        Err(e) => {
            if let Some(skip) = e.skip() {
                assert!((HEADER_LEN..=512).contains(&skip) && skip <= buf.len());
            }
            if let Some(nack) = e.nack() {
                assert_eq!(nack.body, Body::GenericNack);
                assert!(encode(&nack).is_ok());
            }
        }
    }
}
