//! One blocking TCP connection to one broker: framing, correlation ids, version negotiation.
//!
//! Every Kafka frame is a 4-byte big-endian size followed by that many bytes. A request frame
//! holds a `RequestHeader` then the body; a response frame a `ResponseHeader` then the body.
//! Header versions depend on the API and its version (flexible versions use tagged fields).
//!
//! Requests are strictly one at a time: `send` writes a request and reads its response before
//! returning, so correlation ids only guard against a confused peer.
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, Message, Request, StrBytes};

use super::error::{ClientError, CodecError};
use crate::security::sasl::scram_client::ScramClient;
use crate::security::sasl::SaslMechanism;

/// ApiVersions error code for a request version the broker does not know.
const UNSUPPORTED_VERSION: i16 = 35;

/// Settings shared by every connection a client opens.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub client_id: String,
    /// Largest response frame accepted; checked before allocating the frame buffer.
    pub response_bytes_max: usize,
    pub connect_timeout: Duration,
    /// How long a response may take beyond any wait time the request itself asks for.
    pub request_timeout: Duration,
    /// Authenticate every connection with SASL (the broker's listener is SASL_PLAINTEXT, or
    /// SASL_SSL with `tls`).
    pub sasl: Option<SaslLogin>,
    /// Speak TLS on every connection (the listener is SSL or SASL_SSL); the server name
    /// checked is the host of the address connected to.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// A SASL mechanism and the credentials to authenticate with.
#[derive(Clone)]
pub struct SaslLogin {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslLogin")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            client_id: "sluice-cli".to_owned(),
            response_bytes_max: 128 * 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            sasl: None,
            tls: None,
        }
    }
}

/// A connection's byte stream: plain TCP or TLS over it. Timeouts are set on the socket
/// beneath either way.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn socket(&self) -> &TcpStream {
        match self {
            Stream::Plain(socket) => socket,
            Stream::Tls(tls) => &tls.sock,
        }
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.socket().set_read_timeout(timeout)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(socket) => socket.read(buf),
            Stream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(socket) => socket.write(buf),
            Stream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(socket) => socket.flush(),
            Stream::Tls(tls) => tls.flush(),
        }
    }
}

/// The TLS server name for `addr` (`host:port`, `[v6]:port`): a DNS name or an IP address,
/// as the broker's certificate names it.
pub fn tls_server_name(addr: &str) -> Option<rustls_pki_types::ServerName<'static>> {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _port)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    rustls_pki_types::ServerName::try_from(host.to_owned()).ok()
}

/// A connected, version-negotiated broker connection.
#[derive(Debug)]
pub struct Connection {
    stream: Stream,
    addr: String,
    client_id: StrBytes,
    correlation_id_next: i32,
    /// Broker-advertised (min, max) version per API key.
    broker_versions: HashMap<i16, (i16, i16)>,
    response_bytes_max: usize,
    request_timeout: Duration,
}

/// The short name of a request type, e.g. `MetadataRequest`, for error messages.
pub fn api_name<R>() -> &'static str {
    let full = std::any::type_name::<R>();
    full.rsplit("::").next().unwrap_or(full)
}

impl Connection {
    /// Connects to `addr` (host:port) and negotiates API versions with ApiVersions.
    pub fn connect(addr: &str, config: &ConnectionConfig) -> Result<Self, ClientError> {
        let connect_err = |source| ClientError::Connect {
            addr: addr.to_owned(),
            source,
        };
        let mut last_err = None;
        let mut stream = None;
        for sock_addr in addr.to_socket_addrs().map_err(connect_err)? {
            match TcpStream::connect_timeout(&sock_addr, config.connect_timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last_err = Some(e),
            }
        }
        let stream = match stream {
            Some(s) => s,
            None => {
                return Err(connect_err(last_err.unwrap_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "address resolved to nothing")
                })))
            }
        };
        stream.set_nodelay(true).map_err(connect_err)?;
        let stream = match &config.tls {
            None => Stream::Plain(stream),
            Some(tls) => {
                let name = tls_server_name(addr).ok_or_else(|| {
                    connect_err(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "no TLS server name in the address",
                    ))
                })?;
                let tls = rustls::ClientConnection::new(Arc::clone(tls), name)
                    .map_err(|e| connect_err(std::io::Error::other(e)))?;
                // The handshake runs inside the first request's write, before that request
                // sets its own read timeout: bound it by the connect timeout.
                stream
                    .set_read_timeout(Some(config.connect_timeout))
                    .map_err(connect_err)?;
                Stream::Tls(Box::new(rustls::StreamOwned::new(tls, stream)))
            }
        };
        let mut conn = Self {
            stream,
            addr: addr.to_owned(),
            client_id: StrBytes::from_string(config.client_id.clone()),
            correlation_id_next: 1,
            broker_versions: HashMap::new(),
            response_bytes_max: config.response_bytes_max,
            request_timeout: config.request_timeout,
        };
        conn.negotiate_versions()?;
        if let Some(login) = &config.sasl {
            conn.authenticate(login)?;
        }
        Ok(conn)
    }

    /// The address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The broker's advertised (min, max) versions for an API, if it advertises it.
    pub fn broker_versions(&self, api_key: ApiKey) -> Option<(i16, i16)> {
        self.broker_versions.get(&(api_key as i16)).copied()
    }

    /// The highest version of `R` both this client and the broker support.
    pub fn version<R: Request>(&self) -> Result<i16, ClientError> {
        let client = R::VERSIONS;
        let unsupported = |broker_range| ClientError::UnsupportedApi {
            addr: self.addr.clone(),
            api: api_name::<R>(),
            client_min: client.min,
            client_max: client.max,
            broker_range,
        };
        let (broker_min, broker_max) = self
            .broker_versions
            .get(&R::KEY)
            .copied()
            .ok_or_else(|| unsupported(None))?;
        let version = client.max.min(broker_max);
        if version < client.min.max(broker_min) {
            return Err(unsupported(Some((broker_min, broker_max))));
        }
        Ok(version)
    }

    /// Sends `request` at the negotiated version and waits for its response.
    pub fn send<R: Request>(&mut self, request: &R) -> Result<(R::Response, i16), ClientError> {
        let version = self.version::<R>()?;
        let response = self.send_version(request, version, Duration::ZERO)?;
        Ok((response, version))
    }

    /// Sends `request` at `version` and waits for its response. `extra_wait` is added to the
    /// read timeout for requests that park on the broker (Fetch's max_wait_ms).
    pub fn send_version<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        extra_wait: Duration,
    ) -> Result<R::Response, ClientError> {
        let correlation_id = self.write_request(request, version)?;
        self.stream
            .set_read_timeout(Some(self.request_timeout + extra_wait))
            .map_err(|source| self.io_err(source))?;
        let mut frame = self.read_frame()?;
        let api_key = api_key_of::<R>();
        let header_version = api_key.response_header_version(version);
        let header = ResponseHeader::decode(&mut frame, header_version)
            .map_err(|e| self.decode_err::<R>(version, e.into()))?;
        if header.correlation_id != correlation_id {
            return Err(ClientError::CorrelationMismatch {
                addr: self.addr.clone(),
                expected: correlation_id,
                got: header.correlation_id,
            });
        }
        R::Response::decode(&mut frame, version)
            .map_err(|e| self.decode_err::<R>(version, e.into()))
    }

    /// Sends a request the broker will not answer (Produce with acks=0).
    pub fn send_without_response<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<(), ClientError> {
        self.write_request(request, version).map(|_| ())
    }

    fn write_request<R: Request>(&mut self, request: &R, version: i16) -> Result<i32, ClientError> {
        let correlation_id = self.correlation_id_next;
        self.correlation_id_next = self.correlation_id_next.wrapping_add(1);
        let api_key = api_key_of::<R>();
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let encode_err = |source: CodecError| ClientError::Encode {
            api: api_name::<R>(),
            version,
            source,
        };
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(&[0u8; 4]);
        header
            .encode(&mut buf, api_key.request_header_version(version))
            .map_err(|e| encode_err(e.into()))?;
        request
            .encode(&mut buf, version)
            .map_err(|e| encode_err(e.into()))?;
        let body_len = i32::try_from(buf.len() - 4).map_err(|_| {
            encode_err(format!("request of {} bytes is too large", buf.len()).into())
        })?;
        buf[..4].copy_from_slice(&body_len.to_be_bytes());
        // TLS may hold written bytes until flushed; plain TCP's flush does nothing.
        self.stream
            .write_all(&buf)
            .and_then(|()| self.stream.flush())
            .map_err(|source| self.io_err(source))?;
        Ok(correlation_id)
    }

    fn read_frame(&mut self) -> Result<Bytes, ClientError> {
        let mut size_buf = [0u8; 4];
        self.stream
            .read_exact(&mut size_buf)
            .map_err(|source| self.io_err(source))?;
        let size = i32::from_be_bytes(size_buf);
        // A negative size is as impossible as a huge one; report both the same way.
        let size_bytes = usize::try_from(size).unwrap_or(usize::MAX);
        if size_bytes > self.response_bytes_max {
            return Err(ClientError::ResponseTooLarge {
                addr: self.addr.clone(),
                size_bytes,
                size_bytes_max: self.response_bytes_max,
            });
        }
        let mut frame = vec![0u8; size_bytes];
        self.stream
            .read_exact(&mut frame)
            .map_err(|source| self.io_err(source))?;
        Ok(Bytes::from(frame))
    }

    /// SaslHandshake, then SaslAuthenticate rounds until the mechanism's exchange is done.
    fn authenticate(&mut self, login: &SaslLogin) -> Result<(), ClientError> {
        let addr = self.addr.clone();
        let context = || format!("SASL {} authentication to {addr}", login.mechanism);
        let handshake = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str(login.mechanism.name()));
        let (response, _) = self.send(&handshake)?;
        super::error::check_error_code(response.error_code, None, context)?;
        let failed = |reason: String| ClientError::Sasl {
            addr: addr.clone(),
            reason,
        };
        match login.mechanism.scram_hash() {
            None => {
                let token = format!("\0{}\0{}", login.username, login.password);
                self.sasl_round(token.into_bytes(), login)?;
            }
            Some(hash) => {
                let (client, first) =
                    ScramClient::start(hash, &login.username, &login.password).map_err(failed)?;
                let server_first = self.sasl_round(first, login)?;
                let (check, client_final) = client.finish(&server_first).map_err(failed)?;
                let server_final = self.sasl_round(client_final, login)?;
                check.verify(&server_final).map_err(failed)?;
            }
        }
        Ok(())
    }

    fn sasl_round(&mut self, token: Vec<u8>, login: &SaslLogin) -> Result<Bytes, ClientError> {
        let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        let (response, _) = self.send(&request)?;
        super::error::check_error_code(
            response.error_code,
            response.error_message.as_deref(),
            || format!("SASL {} authentication to {}", login.mechanism, self.addr),
        )?;
        Ok(response.auth_bytes)
    }

    /// ApiVersions at our highest version; a broker that does not know it answers
    /// UNSUPPORTED_VERSION with a v0 body listing its own ApiVersions range, and we retry.
    fn negotiate_versions(&mut self) -> Result<(), ClientError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("sluice"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut version = ApiVersionsRequest::VERSIONS.max;
        for _attempt in 0..2 {
            let response = self.api_versions_once(&request, version)?;
            if response.error_code == UNSUPPORTED_VERSION {
                let broker_max = response
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                    .map_or(0, |k| k.max_version);
                version = broker_max.min(ApiVersionsRequest::VERSIONS.max);
                continue;
            }
            super::error::check_error_code(response.error_code, None, || {
                format!("ApiVersions to {}", self.addr)
            })?;
            self.broker_versions = response
                .api_keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect();
            return Ok(());
        }
        Err(ClientError::UnsupportedApi {
            addr: self.addr.clone(),
            api: api_name::<ApiVersionsRequest>(),
            client_min: ApiVersionsRequest::VERSIONS.min,
            client_max: ApiVersionsRequest::VERSIONS.max,
            broker_range: None,
        })
    }

    fn api_versions_once(
        &mut self,
        request: &ApiVersionsRequest,
        version: i16,
    ) -> Result<ApiVersionsResponse, ClientError> {
        let correlation_id = self.write_request(request, version)?;
        self.stream
            .set_read_timeout(Some(self.request_timeout))
            .map_err(|source| self.io_err(source))?;
        let mut frame = self.read_frame()?;
        // The ApiVersions response header is always v0, whatever the request version.
        let header = ResponseHeader::decode(&mut frame, 0)
            .map_err(|e| self.decode_err::<ApiVersionsRequest>(version, e.into()))?;
        if header.correlation_id != correlation_id {
            return Err(ClientError::CorrelationMismatch {
                addr: self.addr.clone(),
                expected: correlation_id,
                got: header.correlation_id,
            });
        }
        // On UNSUPPORTED_VERSION the body is v0, so peek at the error code before decoding.
        let error_code = frame
            .get(..2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .unwrap_or(0);
        let body_version = if error_code == UNSUPPORTED_VERSION {
            0
        } else {
            version
        };
        ApiVersionsResponse::decode(&mut frame, body_version)
            .map_err(|e| self.decode_err::<ApiVersionsRequest>(body_version, e.into()))
    }

    fn io_err(&self, source: std::io::Error) -> ClientError {
        // A read timeout surfaces as WouldBlock on Unix; name it for what it is.
        if matches!(
            source.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            return ClientError::Timeout {
                addr: self.addr.clone(),
            };
        }
        ClientError::Io {
            addr: self.addr.clone(),
            source,
        }
    }

    fn decode_err<R>(&self, version: i16, source: CodecError) -> ClientError {
        ClientError::Decode {
            api: api_name::<R>(),
            version,
            addr: self.addr.clone(),
            source,
        }
    }
}

fn api_key_of<R: Request>() -> ApiKey {
    // Every `Request` type in kafka-protocol has a KEY that ApiKey knows; a failure here
    // would be a bug in that crate, not bad input.
    #[allow(clippy::expect_used)]
    ApiKey::try_from(R::KEY).expect("kafka-protocol request with an unknown ApiKey")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::MetadataRequest;
    use kafka_protocol::protocol::decode_request_header_from_buffer;
    use std::net::TcpListener;

    fn read_request(stream: &mut TcpStream) -> (RequestHeader, Bytes) {
        let mut size = [0u8; 4];
        stream.read_exact(&mut size).expect("size");
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        stream.read_exact(&mut frame).expect("frame");
        let mut frame = Bytes::from(frame);
        let header = decode_request_header_from_buffer(&mut frame).expect("header");
        (header, frame)
    }

    fn write_api_versions(
        stream: &mut TcpStream,
        correlation_id: i32,
        body: &ApiVersionsResponse,
        version: i16,
    ) {
        let mut buf = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(correlation_id)
            .encode(&mut buf, 0)
            .expect("header");
        body.encode(&mut buf, version).expect("body");
        stream
            .write_all(&(buf.len() as i32).to_be_bytes())
            .expect("size");
        stream.write_all(&buf).expect("frame");
    }

    fn api(key: ApiKey, min_version: i16, max_version: i16) -> ApiVersion {
        ApiVersion::default()
            .with_api_key(key as i16)
            .with_min_version(min_version)
            .with_max_version(max_version)
    }

    /// A broker that knows ApiVersions only up to v3 answers our v4 with a v0 body; we retry
    /// at v3 and then pick the highest common version of every API.
    #[test]
    fn negotiates_down_after_unsupported_version() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let (header, _) = read_request(&mut stream);
            assert_eq!(header.request_api_version, 4);
            let refusal = ApiVersionsResponse::default()
                .with_error_code(UNSUPPORTED_VERSION)
                .with_api_keys(vec![api(ApiKey::ApiVersions, 0, 3)]);
            write_api_versions(&mut stream, header.correlation_id, &refusal, 0);
            let (header, _) = read_request(&mut stream);
            assert_eq!(header.request_api_version, 3);
            let answer = ApiVersionsResponse::default().with_api_keys(vec![
                api(ApiKey::ApiVersions, 0, 3),
                api(ApiKey::Metadata, 0, 99),
                api(ApiKey::Produce, 0, 2),
            ]);
            write_api_versions(&mut stream, header.correlation_id, &answer, 3);
        });
        let conn = Connection::connect(&addr, &ConnectionConfig::default()).expect("connect");
        server.join().expect("server");
        assert_eq!(
            conn.version::<MetadataRequest>().ok(),
            Some(MetadataRequest::VERSIONS.max)
        );
        assert!(matches!(
            conn.version::<kafka_protocol::messages::ProduceRequest>(),
            Err(ClientError::UnsupportedApi {
                broker_range: Some((0, 2)),
                ..
            })
        ));
        assert!(matches!(
            conn.version::<kafka_protocol::messages::FetchRequest>(),
            Err(ClientError::UnsupportedApi {
                broker_range: None,
                ..
            })
        ));
    }

    #[test]
    fn rejects_oversized_response_before_allocating() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let _ = read_request(&mut stream);
            stream.write_all(&i32::MAX.to_be_bytes()).expect("size");
        });
        let config = ConnectionConfig {
            response_bytes_max: 1024,
            ..ConnectionConfig::default()
        };
        let err = Connection::connect(&addr, &config).expect_err("must fail");
        server.join().expect("server");
        assert!(matches!(
            err,
            ClientError::ResponseTooLarge {
                size_bytes_max: 1024,
                ..
            }
        ));
    }

    #[test]
    fn api_name_is_short() {
        assert_eq!(api_name::<MetadataRequest>(), "MetadataRequest");
    }
}
