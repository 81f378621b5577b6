//! A certificate subject printed as Kafka prints it: the string of Java's
//! `X500Principal.getName()`, which is RFC 2253 (`CN=alice,OU=eng,O=corp`). Kafka's default
//! principal builder names an mTLS client `User:` and this string, so ACLs written for a Kafka
//! broker match here too.
//!
//! The escaping is what keeps the principal honest: without it a common name of
//! `alice,OU=admins` would print as a different, more privileged subject. Values escape as
//! Java escapes them, a superset of RFC 4514's required set: each of `,=+<>#;"\` anywhere, a
//! leading or trailing space, and NUL as `\00`.

use x509_parser::asn1_rs::{Any, Tag, ToDer};
use x509_parser::x509::{AttributeTypeAndValue, RelativeDistinguishedName, X509Name};

/// `name` in RFC 2253 form: most specific RDN first (X.509 stores the most general first),
/// RDNs joined by `,`, the attributes of a multi-valued RDN by `+`.
pub fn rfc2253(name: &X509Name<'_>) -> String {
    let mut rdns: Vec<String> = name.iter().map(rdn_string).collect();
    rdns.reverse();
    rdns.join(",")
}

fn rdn_string(rdn: &RelativeDistinguishedName<'_>) -> String {
    rdn.iter()
        .map(attribute_string)
        .collect::<Vec<_>>()
        .join("+")
}

/// `TYPE=value`. Types RFC 2253 names print as keywords; any other prints as its dotted OID
/// with the value as `#` and the hex of its DER encoding, as RFC 2253 and Java do (so an
/// `emailAddress` reads `1.2.840.113549.1.9.1=#16...`). A value that is not a string prints
/// in the `#` form too, so every subject has a principal.
fn attribute_string(attribute: &AttributeTypeAndValue<'_>) -> String {
    let oid = attribute.attr_type().to_id_string();
    let text = match keyword(&oid) {
        Some(keyword) => string_value(attribute.attr_value()).map(|value| (keyword, value)),
        None => None,
    };
    match text {
        Some((keyword, value)) => format!("{keyword}={}", escape_value(&value)),
        None => format!("{oid}={}", hex_value(attribute.attr_value())),
    }
}

/// The attribute types RFC 2253 section 2.3 gives keywords to (Java's RFC 2253 table).
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        _ => return None,
    })
}

/// The text of the string types Java prints as text; `None` for anything else (which then
/// prints in `#` hex form).
fn string_value(value: &Any<'_>) -> Option<String> {
    match value.tag() {
        Tag::PrintableString | Tag::Ia5String | Tag::Utf8String => {
            std::str::from_utf8(value.data).ok().map(str::to_owned)
        }
        // Teletex and GeneralString carry 8-bit text; Latin-1 maps each byte to one char.
        Tag::T61String | Tag::GeneralString => {
            Some(value.data.iter().map(|&b| char::from(b)).collect())
        }
        Tag::BmpString => {
            let units = value.data.chunks_exact(2);
            if !units.remainder().is_empty() {
                return None;
            }
            char::decode_utf16(units.map(|pair| u16::from_be_bytes([pair[0], pair[1]])))
                .collect::<Result<String, _>>()
                .ok()
        }
        _ => None,
    }
}

/// Escapes an attribute value as Java's `AVA.toRFC2253String` does.
fn escape_value(value: &str) -> String {
    const ESCAPED: &str = ",=+<>#;\"\\";
    let is_edge_space = |c: char| c == ' ' || c == '\r';
    let chars: Vec<char> = value.chars().collect();
    let lead = chars.iter().take_while(|&&c| is_edge_space(c)).count();
    let trail = chars.len()
        - chars[lead..]
            .iter()
            .rev()
            .take_while(|&&c| is_edge_space(c))
            .count();
    let mut out = String::with_capacity(value.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c == '\0' {
            out.push_str("\\00");
            continue;
        }
        if ESCAPED.contains(c) || i < lead || i >= trail {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `#` and the lower-case hex of the value's DER encoding (tag, length and content).
fn hex_value(value: &Any<'_>) -> String {
    let der = value.to_der_vec().unwrap_or_default();
    let mut out = String::with_capacity(1 + 2 * der.len());
    out.push('#');
    for byte in der {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_rfc_2253_and_java_escape() {
        assert_eq!(escape_value("alice"), "alice");
        assert_eq!(escape_value("alice,OU=admins"), "alice\\,OU\\=admins");
        assert_eq!(escape_value("a+b"), "a\\+b");
        assert_eq!(escape_value("\"q\""), "\\\"q\\\"");
        assert_eq!(escape_value("back\\slash"), "back\\\\slash");
        assert_eq!(escape_value("<a>;b"), "\\<a\\>\\;b");
        assert_eq!(escape_value("#1"), "\\#1");
        assert_eq!(escape_value("a#1"), "a\\#1");
        assert_eq!(escape_value(" a b "), "\\ a b\\ ");
        assert_eq!(escape_value("  "), "\\ \\ ");
        assert_eq!(escape_value("nul\0"), "nul\\00");
        assert_eq!(escape_value("é ü"), "é ü");
        assert_eq!(escape_value(""), "");
    }

    /// A subject DER-encoded by hand, most general RDN first as X.509 stores it:
    /// `C=DE`, `OU=eng + O=corp` (one multi-valued RDN), `CN=alice,OU=admins`, `emailAddress=a@b`.
    #[test]
    fn prints_most_specific_first_with_multi_valued_rdns_and_oid_types() {
        use x509_parser::prelude::FromDer;
        fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
            assert!(content.len() < 128, "short form only");
            let mut out = vec![tag, content.len() as u8];
            out.extend_from_slice(content);
            out
        }
        fn attribute(oid: &[u8], string_tag: u8, value: &str) -> Vec<u8> {
            let mut body = tlv(0x06, oid);
            body.extend(tlv(string_tag, value.as_bytes()));
            tlv(0x30, &body)
        }
        const CN: &[u8] = &[0x55, 0x04, 0x03];
        const C: &[u8] = &[0x55, 0x04, 0x06];
        const O: &[u8] = &[0x55, 0x04, 0x0a];
        const OU: &[u8] = &[0x55, 0x04, 0x0b];
        const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];
        const PRINTABLE: u8 = 0x13;
        const UTF8: u8 = 0x0c;
        const IA5: u8 = 0x16;
        // DER sorts a SET by encoding: the shorter OU attribute first.
        let mut multi = attribute(OU, UTF8, "eng");
        multi.extend(attribute(O, UTF8, "corp"));
        let mut rdns = tlv(0x31, &attribute(C, PRINTABLE, "DE"));
        rdns.extend(tlv(0x31, &multi));
        rdns.extend(tlv(0x31, &attribute(CN, UTF8, "alice,OU=admins")));
        rdns.extend(tlv(0x31, &attribute(EMAIL, IA5, "a@b")));
        let der = tlv(0x30, &rdns);
        let (_, name) = X509Name::from_der(&der).expect("hand-built name parses");
        assert_eq!(
            rfc2253(&name),
            "1.2.840.113549.1.9.1=#1603614062,CN=alice\\,OU\\=admins,OU=eng+O=corp,C=DE"
        );
    }
}
