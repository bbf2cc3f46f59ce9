//! The status-word table: every SW the card can emit, its name and its ISO 7816-4 meaning.
//!
//! Declared once in `status_table!`; conversion, names, meanings and the list for the
//! command reference are derived from it. `to_u16(from_u16(x)) == x` for every x.

use std::fmt;

macro_rules! status_table {
    ($( $(#[$doc:meta])* $variant:ident = $sw:literal, $name:literal, $meaning:literal; )*) => {
        /// A status word SW1-SW2 (ISO 7816-4 §5.6).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Status {
            $( $(#[$doc])* $variant, )*
            /// `61xx`: SW2 more bytes available through GET RESPONSE (`00` = 256 or more).
            BytesAvailable(u8),
            /// `6Cxx`: wrong Le; SW2 is the exact number of available bytes.
            WrongLe(u8),
            /// `63Cx`: verification failed, x tries left (always masked to 0..15).
            RetriesLeft(u8),
            /// Any other value, kept so that the u16 round trip is lossless.
            Unknown(u16),
        }

        impl Status {
            /// Every fixed entry of the table (parametric ones not included).
            pub const TABLE: &'static [Status] = &[ $( Status::$variant, )* ];

            pub const fn to_u16(self) -> u16 {
                match self {
                    $( Status::$variant => $sw, )*
                    Status::BytesAvailable(n) => 0x6100 | n as u16,
                    Status::WrongLe(n) => 0x6C00 | n as u16,
                    Status::RetriesLeft(n) => 0x63C0 | (n & 0x0F) as u16,
                    Status::Unknown(sw) => sw,
                }
            }

            pub const fn from_u16(sw: u16) -> Status {
                match sw {
                    $( $sw => Status::$variant, )*
                    _ => match sw & 0xFF00 {
                        0x6100 => Status::BytesAvailable(sw as u8),
                        0x6C00 => Status::WrongLe(sw as u8),
                        0x6300 if sw & 0xF0 == 0xC0 => Status::RetriesLeft((sw & 0x0F) as u8),
                        _ => Status::Unknown(sw),
                    },
                }
            }

            /// A short identifier (`file_not_found`).
            pub const fn name(self) -> &'static str {
                match self {
                    $( Status::$variant => $name, )*
                    Status::BytesAvailable(_) => "bytes_available",
                    Status::WrongLe(_) => "wrong_le",
                    Status::RetriesLeft(_) => "retries_left",
                    Status::Unknown(_) => "unknown",
                }
            }

            /// The ISO 7816-4 meaning (or the named specification's) as text.
            pub fn meaning(self) -> String {
                match self {
                    $( Status::$variant => $meaning.to_string(), )*
                    Status::BytesAvailable(0) => "256 or more response bytes available (GET RESPONSE)".to_string(),
                    Status::BytesAvailable(n) => format!("{n} response bytes still available (GET RESPONSE)"),
                    Status::WrongLe(n) => format!("wrong Le field; {n} bytes available"),
                    Status::RetriesLeft(n) => format!("verification failed, {} tries left", n & 0x0F),
                    Status::Unknown(_) => "not in our status-word table".to_string(),
                }
            }
        }
    };
}

status_table! {
    Success = 0x9000, "success", "normal processing";
    /// READ BINARY/RECORD returned fewer bytes than Ne.
    EndOfFile = 0x6282, "end_of_file", "end of file or record reached before reading Ne bytes";
    SelectedFileDeactivated = 0x6283, "selected_file_deactivated", "selected file deactivated";
    /// GlobalPlatform: host cryptogram wrong (no counter).
    VerificationFailed = 0x6300, "verification_failed", "verification failed (authentication of the host)";
    /// GlobalPlatform GET STATUS: more data, repeat the command with P2 'next'.
    MoreDataAvailable = 0x6310, "more_data_available", "more data available (repeat the command)";
    ExecutionError = 0x6400, "execution_error", "execution error, non-volatile memory unchanged";
    MemoryFailure = 0x6581, "memory_failure", "memory failure (the card state could not be written)";
    WrongLength = 0x6700, "wrong_length", "wrong length (Lc or Le, or malformed APDU)";
    LogicalChannelNotSupported = 0x6881, "logical_channel_not_supported", "logical channel not supported or not open";
    SecureMessagingNotSupported = 0x6882, "secure_messaging_not_supported", "secure messaging not supported";
    LastCommandOfChainExpected = 0x6883, "last_command_of_chain_expected", "last command of the chain expected";
    ChainingNotSupported = 0x6884, "chaining_not_supported", "command chaining not supported";
    IncompatibleFileStructure = 0x6981, "incompatible_file_structure", "command incompatible with file structure";
    SecurityStatusNotSatisfied = 0x6982, "security_status_not_satisfied", "security status not satisfied";
    AuthenticationMethodBlocked = 0x6983, "authentication_method_blocked", "authentication method blocked";
    ReferenceDataNotUsable = 0x6984, "reference_data_not_usable", "reference data not usable";
    ConditionsNotSatisfied = 0x6985, "conditions_not_satisfied", "conditions of use not satisfied";
    CommandNotAllowedNoCurrentEf = 0x6986, "command_not_allowed", "command not allowed (no current EF)";
    SmDataObjectsMissing = 0x6987, "sm_data_objects_missing", "expected secure messaging data objects missing";
    IncorrectSmDataObjects = 0x6988, "incorrect_sm_data_objects", "incorrect secure messaging data objects";
    IncorrectData = 0x6A80, "incorrect_data", "incorrect parameters in the command data field";
    FunctionNotSupported = 0x6A81, "function_not_supported", "function not supported";
    FileNotFound = 0x6A82, "file_not_found", "file or application not found";
    RecordNotFound = 0x6A83, "record_not_found", "record not found";
    NotEnoughMemory = 0x6A84, "not_enough_memory", "not enough memory space in the file";
    IncorrectP1P2 = 0x6A86, "incorrect_p1p2", "incorrect parameters P1-P2";
    ReferencedDataNotFound = 0x6A88, "referenced_data_not_found", "referenced data or reference data not found";
    FileAlreadyExists = 0x6A89, "file_already_exists", "file already exists";
    WrongP1P2 = 0x6B00, "wrong_p1p2", "wrong parameters P1-P2 (offset outside the EF)";
    InsNotSupported = 0x6D00, "ins_not_supported", "instruction code not supported or invalid";
    ClaNotSupported = 0x6E00, "cla_not_supported", "class not supported";
    NoPreciseDiagnosis = 0x6F00, "no_precise_diagnosis", "no precise diagnosis (internal error)";
    // Authentication applet (apdu-specs/docs/mutual-auth.md), proprietary 93xx.
    /// VERIFY SERVER: the signature over R' does not verify with the service's trust anchor, or R' does not answer the pending R.
    BadServerSignature = 0x9301, "bad_server_signature", "server signature invalid, or R' does not answer the pending registration";
    /// VERIFY SERVER: the server signed a refusal; SECURE SEND: call outside the granted scope.
    ServiceNotGranted = 0x9302, "service_not_granted", "service not granted by the server (or call outside the granted scope)";
    /// VERIFY SERVER / SECURE SEND: the grant (and the connection) has expired.
    GrantExpired = 0x9303, "grant_expired", "grant or secure connection expired; register again";
    /// SECURE SEND / SECURE RECEIVE without an open connection.
    NoSecureConnection = 0x9304, "no_secure_connection", "no secure connection (run GET REGISTRATION and VERIFY SERVER first)";
    /// SECURE RECEIVE: tag, counter, connection id or format wrong (modified, replayed, reordered or truncated).
    MessageAuthenticationFailed = 0x9305, "message_authentication_failed", "protected message failed authentication (modified, replayed, reordered or truncated)";
    /// GET REGISTRATION: no server key installed in this container for the service.
    NoTrustAnchor = 0x9306, "no_trust_anchor", "no trust anchor (server key) installed for the service";
}

impl Status {
    /// Build `63Cx`, masking the counter to 0..15.
    pub const fn retries_left(n: u8) -> Status {
        Status::RetriesLeft(if n > 15 { 15 } else { n })
    }

    pub const fn sw1(self) -> u8 {
        (self.to_u16() >> 8) as u8
    }
    pub const fn sw2(self) -> u8 {
        self.to_u16() as u8
    }
    pub const fn to_bytes(self) -> [u8; 2] {
        self.to_u16().to_be_bytes()
    }

    /// `9000` or `61xx`: the command completed.
    pub const fn is_success(self) -> bool {
        matches!(self, Status::Success | Status::BytesAvailable(_))
    }

    /// `62xx` and `63xx`: completed with a warning (state may have changed).
    pub const fn is_warning(self) -> bool {
        matches!(self.sw1(), 0x62 | 0x63)
    }
}

impl From<u16> for Status {
    fn from(sw: u16) -> Status {
        Status::from_u16(sw)
    }
}

impl From<Status> for u16 {
    fn from(s: Status) -> u16 {
        s.to_u16()
    }
}

impl fmt::Display for Status {
    /// `6A82 file or application not found`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X} {}", self.to_u16(), self.meaning())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn display_names_the_code_and_its_meaning() {
        assert_eq!(
            Status::FileNotFound.to_string(),
            "6A82 file or application not found"
        );
        assert_eq!(
            Status::from_u16(0x63C2).to_string(),
            "63C2 verification failed, 2 tries left"
        );
        assert_eq!(
            Status::from_u16(0x6110).to_string(),
            "6110 16 response bytes still available (GET RESPONSE)"
        );
    }

    #[test]
    fn mutual_auth_status_words_are_in_the_table() {
        for (sw, s) in [
            (0x9301, Status::BadServerSignature),
            (0x9302, Status::ServiceNotGranted),
            (0x9303, Status::GrantExpired),
            (0x9304, Status::NoSecureConnection),
            (0x9305, Status::MessageAuthenticationFailed),
            (0x9306, Status::NoTrustAnchor),
        ] {
            assert_eq!(Status::from_u16(sw), s);
            assert_eq!(s.to_u16(), sw);
            assert!(Status::TABLE.contains(&s));
            assert!(!s.is_success() && !s.is_warning());
        }
    }

    #[test]
    fn retry_counters_are_masked() {
        assert_eq!(Status::retries_left(200).to_u16(), 0x63CF);
        assert_eq!(Status::RetriesLeft(0x1A).to_u16(), 0x63CA);
        assert_eq!(Status::from_u16(0x63C3), Status::RetriesLeft(3));
    }

    #[test]
    fn table_codes_are_unique_and_named() {
        let mut seen = std::collections::HashSet::new();
        for s in Status::TABLE {
            assert!(seen.insert(s.to_u16()), "duplicate {:04X}", s.to_u16());
            assert!(!s.meaning().is_empty());
            assert_eq!(Status::from_u16(s.to_u16()), *s);
        }
    }

    proptest! {
        #[test]
        fn u16_round_trip_is_lossless(sw in any::<u16>()) {
            prop_assert_eq!(Status::from_u16(sw).to_u16(), sw);
        }
    }
}
