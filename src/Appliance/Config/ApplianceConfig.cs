namespace Appliance.Config;

/// <summary>
/// The whole configuration file as read from JSON (DESIGN.md "Config model"). Plain mutable
/// records for the serializer; <see cref="ConfigCompiler"/> validates them and builds the
/// immutable <see cref="ConfigSnapshot"/> that the hot path reads.
/// </summary>
public sealed class ApplianceConfig
{
    public ServerConfig? Server { get; set; }
    public List<ListenerConfig>? Listeners { get; set; }
    public List<CertificateConfig>? Certificates { get; set; }
    public List<TenantConfig>? Tenants { get; set; }
    public List<RouteConfig>? Routes { get; set; }
    public List<ClusterConfig>? Clusters { get; set; }
    public AdminConfig? Admin { get; set; }
    /// <summary>The AI gateway: LLM providers and the models clients may name; routes with an "ai" handler serve them.</summary>
    public AiConfig? Ai { get; set; }
    /// <summary>Reserved for the MCP gateway; accepted and kept, not interpreted yet.</summary>
    public System.Text.Json.JsonElement? Mcp { get; set; }
}

public sealed class ServerConfig
{
    /// <summary>Folder for generated certificates and runtime state.</summary>
    public string? StateDirectory { get; set; }
    /// <summary>How long SIGTERM waits for in-flight requests before closing connections. Default 30s.</summary>
    public string? ShutdownTimeout { get; set; }
    /// <summary>Value of the Server response header; empty string sends none. Default "appliance".</summary>
    public string? ServerHeader { get; set; }
    /// <summary>
    /// Run socket continuations on the epoll threads instead of hopping to the thread pool (one thread hop less
    /// per read and write; measured +50% requests per CPU-second on S1). Our handlers never block. Default true.
    /// </summary>
    public bool? InlineSocketCompletions { get; set; }
    /// <summary>
    /// Socket event threads (epoll loops). Each runs its sockets' request work inline, so a request and the upstream
    /// connection it uses are cheapest on one thread. Default: half the processors, at least one. Read at start.
    /// </summary>
    public int? SocketThreads { get; set; }
    /// <summary>
    /// "epoll": connections run on the appliance's own epoll loops (Linux; a read waits for the socket's event
    /// instead of trying first, one syscall less per request each way). "dotnet": .NET's socket engine. Default
    /// "epoll". Read at start.
    /// </summary>
    public string? SocketEngine { get; set; }
    /// <summary>
    /// With the "epoll" engine: each event loop hands the socket writes of one round of events to the kernel together,
    /// with one io_uring_enter, instead of one send(2) each. Where io_uring is missing or refused (an old kernel,
    /// kernel.io_uring_disabled, a seccomp filter) the loops say so once and send each write at once. Default true.
    /// Read at start.
    /// </summary>
    public bool? IoUring { get; set; }
    /// <summary>
    /// Who runs a TLS connection's records after the handshake: "openssl", OpenSSL called directly on the handshake's
    /// own SSL object (as nginx does; about a sixth fewer instructions per HTTPS request), or "sslstream", .NET's
    /// SslStream, which always does the handshake. Default "openssl" where the runtime allows it. Read at start.
    /// </summary>
    public string? TlsRecordLayer { get; set; }
    /// <summary>Peers (CIDRs) whose X-Forwarded-For is kept and appended to by routes with xForwarded "append".</summary>
    public List<string>? TrustedProxies { get; set; }
    /// <summary>
    /// A program (and its arguments) run at each certificate expiry warning (30, 14, 7, 1 days), with
    /// APPLIANCE_CERT_NAME, APPLIANCE_CERT_HOSTS, APPLIANCE_CERT_NOT_AFTER and APPLIANCE_CERT_DAYS_LEFT set: a
    /// pager, a mail, a curl to a webhook.
    /// </summary>
    public List<string>? CertificateExpiryCommand { get; set; }
    /// <summary>One line per completed request (absent: no access log).</summary>
    public AccessLogConfig? AccessLog { get; set; }
    /// <summary>How TLS session tickets are sealed (absent: random keys, a new one every hour).</summary>
    public SessionTicketsConfig? SessionTickets { get; set; }
}

/// <summary>
/// server.sessionTickets: the keys that seal TLS session tickets (nginx's ssl_session_tickets and
/// ssl_session_ticket_key, Envoy's session_ticket_keys).
/// </summary>
public sealed class SessionTicketsConfig
{
    /// <summary>false: no sealed tickets; clients resume from the server's session cache only (a TLS 1.3 ticket then names a cached session). Default true.</summary>
    public bool? Enabled { get; set; }
    /// <summary>Sessions the server's session cache keeps per certificate (1 to 1,000,000; about 1 KiB each; least recently used go first). Default 20,480.</summary>
    public int? CacheSize { get; set; }
    /// <summary>
    /// Files of 80 (or 48) random bytes (`openssl rand 80 > ticket.key`): the first seals new tickets, every one opens
    /// them. Shared by appliances behind one address, tickets open on each; kept across restarts, so do sessions.
    /// Watched: rewrite them to rotate. Absent: random keys made in memory.
    /// </summary>
    public List<string>? KeyFiles { get; set; }
    /// <summary>With random keys: how often a new one starts sealing (1m to 24h). Default "1h".</summary>
    public string? Rotate { get; set; }
    /// <summary>
    /// false: a resumed TLS 1.3 handshake gets no fresh ticket while its own is the newest key's (h2o's way; cheaper
    /// for clients that reuse tickets, a full handshake each time tickets run out for those that use one once).
    /// Default true, as nginx.
    /// </summary>
    public bool? RenewOnResumption { get; set; }
    /// <summary>
    /// TLS 1.3 tickets sent after a full handshake (0 to 16; 0: no TLS 1.3 resumption). Default 1, as Go's and Java's
    /// servers (each resumption brings a fresh one); OpenSSL's own default, so nginx's, is 2.
    /// </summary>
    public int? PerHandshake { get; set; }
}

/// <summary>server.accessLog: where and how completed requests are logged (nginx's access_log, Envoy's access log).</summary>
public sealed class AccessLogConfig
{
    /// <summary>The file; a relative path is under the state directory.</summary>
    public string? Path { get; set; }
    /// <summary>"json" (default: one JSON object per line) or "combined" (nginx's combined format).</summary>
    public string? Format { get; set; }
    /// <summary>Rotate when the file passes this size: bytes (a number or "1048576") or "64KiB", "64MiB", "1GiB"; "0" never. Default "64MiB".</summary>
    public System.Text.Json.JsonElement? MaxSize { get; set; }
    /// <summary>Rotated files kept (access.log.1 … access.log.N). Default 10.</summary>
    public int? MaxFiles { get; set; }
    /// <summary>"none" (default) or "lz4": rotated files are written as access.log.N.lz4 (LZ4 frame, `lz4 -dc` reads them).</summary>
    public string? Compress { get; set; }
}

public sealed class ListenerConfig
{
    public string? Name { get; set; }
    /// <summary>"127.0.0.1:8443", "[::1]:8443", "[::]:443", "*:443" (dual-stack any).</summary>
    public string? Address { get; set; }
    public bool Tls { get; set; } = true;
    /// <summary>ALPN protocols offered, in preference order: "h2", "http/1.1".</summary>
    public List<string>? Protocols { get; set; }
    /// <summary>Answer every request on this (plain) listener with 308 to https.</summary>
    public bool RedirectToHttps { get; set; }
    /// <summary>Port used in redirect locations; defaults to 443.</summary>
    public int? HttpsPort { get; set; }
    /// <summary>Certificate (by name) for handshakes without SNI or with an unknown name.</summary>
    public string? DefaultCertificate { get; set; }
    /// <summary>Refuse handshakes whose SNI matches no certificate instead of using the default.</summary>
    public bool RequireSni { get; set; }
    /// <summary>Mutual TLS: ask clients for a certificate chaining to caFile.</summary>
    public ClientCertificatesConfig? ClientCertificates { get; set; }
    public int? Backlog { get; set; }
    public bool ReusePort { get; set; }
    public ListenerLimitsConfig? Limits { get; set; }
}

public sealed class ClientCertificatesConfig
{
    /// <summary>"off" (default), "optional" (a client without one is served) or "required".</summary>
    public string? Mode { get; set; }
    /// <summary>PEM bundle of the CAs client certificates must chain to.</summary>
    public string? CaFile { get; set; }
    /// <summary>
    /// CRLs (PEM "X509 CRL" blocks, or one DER CRL) of the CAs in caFile: with it, every client certificate's chain is
    /// checked against them (a CA without a CRL here, or with an expired one, fails closed). Watched and reloaded.
    /// </summary>
    public string? CrlFile { get; set; }
}

public sealed class ListenerLimitsConfig
{
    public int? MaxConnections { get; set; }
    public string? HandshakeTimeout { get; set; }
    public string? RequestHeadersTimeout { get; set; }
    public string? KeepAliveTimeout { get; set; }
    /// <summary>Minimum request body rate in bytes/second, checked after <see cref="MinRequestBodyRateGracePeriod"/>.</summary>
    public int? MinRequestBodyRate { get; set; }
    public string? MinRequestBodyRateGracePeriod { get; set; }
    public int? MaxRequestLineSize { get; set; }
    public int? MaxRequestHeadersSize { get; set; }
    public int? MaxRequestHeaderCount { get; set; }
    public long? MaxRequestBodySize { get; set; }
    public int? MaxRequestsPerConnection { get; set; }
    public Http2LimitsConfig? Http2 { get; set; }
}

public sealed class Http2LimitsConfig
{
    public int? MaxConcurrentStreams { get; set; }
    public int? InitialStreamWindowSize { get; set; }
    public int? InitialConnectionWindowSize { get; set; }
    public int? MaxFrameSize { get; set; }
    public int? HeaderTableSize { get; set; }
    public int? MaxResetsPerInterval { get; set; }
    public int? MaxContinuationFrames { get; set; }
    public int? MaxControlFramesPerInterval { get; set; }
    public int? MaxEmptyDataFramesPerInterval { get; set; }
    public string? FloodInterval { get; set; }
    public int? MaxQueuedOutputBytes { get; set; }
    /// <summary>A stream (or the connection) blocked on the client's window this long is reset (closed). Default 60s.</summary>
    public string? StreamSendTimeout { get; set; }
}

public sealed class CertificateConfig
{
    public string? Name { get; set; }
    /// <summary>Exact names and "*.example.com" wildcards this certificate serves.</summary>
    public List<string>? Hosts { get; set; }
    public string? CertificatePath { get; set; }
    public string? KeyPath { get; set; }
    public string? ChainPath { get; set; }
    /// <summary>
    /// A DER OCSP response (RFC 6960) to staple, supplied by the operator (e.g. fetched by a cron job where the
    /// gateway cannot reach the responder). Checked at load (good, this certificate, not expired); watched and
    /// reloaded like the certificate files.
    /// </summary>
    public string? OcspResponseFile { get; set; }
    /// <summary>Generate a self-signed certificate at the paths when they do not exist (first start).</summary>
    public bool SelfSigned { get; set; }
    /// <summary>Obtain (and renew) the certificate from an ACME server (RFC 8555) instead of, or after, the files.</summary>
    public AcmeConfig? Acme { get; set; }
    /// <summary>
    /// The tenant (id) that brought this certificate: its hosts must be the tenant's, and it is never served for a
    /// name another tenant holds. Absent: the operator's certificate, served for any name it covers.
    /// </summary>
    public string? Tenant { get; set; }
}

public sealed class AcmeConfig
{
    /// <summary>The ACME server's directory URL (https), e.g. "https://acme-v02.api.letsencrypt.org/directory".</summary>
    public string? Directory { get; set; }
    /// <summary>Contact address for the account (optional).</summary>
    public string? Email { get; set; }
    /// <summary>"http-01" (default: answered on the plain listeners) or "tls-alpn-01" (answered on the TLS listeners).</summary>
    public string? Challenge { get; set; }
    /// <summary>PEM bundle of CAs trusted for the ACME server's own HTTPS; default: the system trust store.</summary>
    public string? CaFile { get; set; }
}

public sealed class TenantConfig
{
    public string? Id { get; set; }
    public List<string>? Hosts { get; set; }
    /// <summary>The CAs this tenant's client certificates chain to, for its routes that ask for one and name no caFile.</summary>
    public TenantClientCertificatesConfig? ClientCertificates { get; set; }
}

public sealed class TenantClientCertificatesConfig
{
    /// <summary>PEM bundle of the tenant's client CAs.</summary>
    public string? CaFile { get; set; }
}

public sealed class RouteClientCertificatesConfig
{
    /// <summary>
    /// "off" (default: the listener's verified certificate, if any, is passed on), "optional" (checked against this
    /// route's CAs; an untrusted or missing one is served without an identity) or "required" (403 without a trusted one).
    /// </summary>
    public string? Mode { get; set; }
    /// <summary>PEM bundle of the CAs this route trusts; default: the route's tenant's caFile, else the listener's.</summary>
    public string? CaFile { get; set; }
}

public sealed class RouteConfig
{
    public string? Id { get; set; }
    public string? Tenant { get; set; }
    /// <summary>Lower runs first among routes for the same host; ties break by path specificity.</summary>
    public int Order { get; set; }
    public RouteMatchConfig? Match { get; set; }
    public DirectResponseConfig? Direct { get; set; }
    public RedirectConfig? Redirect { get; set; }
    /// <summary>Cluster id to proxy to.</summary>
    public string? Cluster { get; set; }
    /// <summary>Serve an OpenAI-compatible API (chat completions, models) over the ai section's providers.</summary>
    public AiRouteConfig? Ai { get; set; }
    /// <summary>Changes on the way to and from the cluster (cluster routes only).</summary>
    public TransformsConfig? Transforms { get; set; }
    /// <summary>Strict-Transport-Security on this route's HTTPS responses (RFC 6797; never sent over plain HTTP).</summary>
    public HstsConfig? Hsts { get; set; }
    /// <summary>Client certificates checked per request on this route (the listener must ask for them in the handshake).</summary>
    public RouteClientCertificatesConfig? ClientCertificates { get; set; }
    /// <summary>false: this route's requests leave no access log line (health checks). Default true.</summary>
    public bool? AccessLog { get; set; }
    /// <summary>Checks run after the route matched and before its handler: access, then rate limit.</summary>
    public RoutePoliciesConfig? Policies { get; set; }
}

public sealed class RoutePoliciesConfig
{
    public AccessPolicyConfig? Access { get; set; }
    public ApiKeyPolicyConfig? ApiKey { get; set; }
    public JwtPolicyConfig? Jwt { get; set; }
    public RateLimitConfig? RateLimit { get; set; }
    public QuotaConfig? Quota { get; set; }
}

/// <summary>Requests per calendar period for the apiKey policy's consumer, across all routes (its usage).</summary>
public sealed class QuotaConfig
{
    /// <summary>Requests allowed per <see cref="Per"/> (this or <see cref="Tokens"/> is required).</summary>
    public long? Requests { get; set; }
    /// <summary>Tokens (input and output of AI answers) allowed per <see cref="Per"/>: a token budget.</summary>
    public long? Tokens { get; set; }
    /// <summary>"hour", "day" or "month" (default), UTC calendar periods.</summary>
    public string? Per { get; set; }
    /// <summary>The status of a refused request: 429 (default) or another 4xx/5xx.</summary>
    public int? Status { get; set; }
}

/// <summary>Requests need a JSON Web Token signed by one of the keys in a JWK Set file.</summary>
public sealed class JwtPolicyConfig
{
    /// <summary>A JWK Set (RFC 7517) of public keys: RSA, EC or oct (required); read again on every config apply.</summary>
    public string? JwksFile { get; set; }
    /// <summary>The "iss" a token must carry (optional).</summary>
    public string? Issuer { get; set; }
    /// <summary>A token's "aud" must name one of these (optional).</summary>
    public List<string>? Audiences { get; set; }
    /// <summary>Allowed clock difference on exp and nbf. Default "60s".</summary>
    public string? ClockSkew { get; set; }
    /// <summary>A header carrying the bare token instead of "Authorization: Bearer".</summary>
    public string? Header { get; set; }
}

/// <summary>Requests need an API key from the state database (consumers and keys are made through the admin API).</summary>
public sealed class ApiKeyPolicyConfig
{
    /// <summary>The request header that carries the key. Default "X-Api-Key".</summary>
    public string? Header { get; set; }
    /// <summary>Also take the key from "Authorization: Bearer KEY". Default true.</summary>
    public bool? Bearer { get; set; }
    /// <summary>Remove the key from the request before the handler (the upstream never sees it). Default true.</summary>
    public bool? HideCredentials { get; set; }
    /// <summary>The key's consumer needs an approved subscription to this route (POST /v1/subscriptions, then approve). Default false.</summary>
    public bool? RequireSubscription { get; set; }
}

/// <summary>Client addresses (IP or CIDR) that may or may not use a route; deny wins, and an allow list refuses every other address.</summary>
public sealed class AccessPolicyConfig
{
    public List<string>? Allow { get; set; }
    public List<string>? Deny { get; set; }
}

public sealed class RateLimitConfig
{
    /// <summary>Requests allowed per <see cref="Per"/>, sustained (required).</summary>
    public long? Requests { get; set; }
    /// <summary>The period of <see cref="Requests"/>: "1s" (default), "1m", "1h".</summary>
    public string? Per { get; set; }
    /// <summary>Requests a key may make at once. Default: <see cref="Requests"/>.</summary>
    public long? Burst { get; set; }
    /// <summary>"client" (default), "consumer" (the apiKey policy's consumer), "subject" (the jwt policy's "sub"), "route", or "header:NAME".</summary>
    public string? Key { get; set; }
    /// <summary>The status of a refused request: 429 (default) or another 4xx/5xx (nginx answers 503).</summary>
    public int? Status { get; set; }
    /// <summary>Keys held at most (default 100000); a new key past it is refused until idle keys are swept.</summary>
    public int? MaxKeys { get; set; }
}

public sealed class HstsConfig
{
    /// <summary>How long browsers remember to use HTTPS only. Default "365d".</summary>
    public string? MaxAge { get; set; }
    public bool IncludeSubDomains { get; set; }
    public bool Preload { get; set; }
}

public sealed class TransformsConfig
{
    /// <summary>Removed from the front of the path when it matches on a segment boundary ("/api" turns "/api/x" into "/x").</summary>
    public string? StripPrefix { get; set; }
    /// <summary>Put in front of the (stripped) path.</summary>
    public string? AddPrefix { get; set; }
    public HeaderTransformsConfig? RequestHeaders { get; set; }
    public HeaderTransformsConfig? ResponseHeaders { get; set; }
    /// <summary>"set" (default: replace client copies), "append" (after a trusted proxy's copy), or "off".</summary>
    public string? XForwarded { get; set; }
    /// <summary>Also send RFC 7239 Forwarded.</summary>
    public bool Forwarded { get; set; }
    /// <summary>Pass the verified client certificate (mutual TLS) in this request header (a client-sent copy is removed).</summary>
    public string? ClientCertificateHeader { get; set; }
    /// <summary>Pass the consumer the route's apiKey policy accepted in this request header, e.g. "X-Consumer-Id" (a client-sent copy is removed).</summary>
    public string? ConsumerHeader { get; set; }
    /// <summary>Pass the "sub" of the token the route's jwt policy accepted in this request header (a client-sent copy is removed).</summary>
    public string? SubjectHeader { get; set; }
}

public sealed class HeaderTransformsConfig
{
    public Dictionary<string, string>? Set { get; set; }
    public Dictionary<string, string>? Add { get; set; }
    public List<string>? Remove { get; set; }
}

public sealed class RouteMatchConfig
{
    public List<string>? Hosts { get; set; }
    /// <summary>Exact path or template: "/users/{id}", "/static/{**rest}".</summary>
    public string? Path { get; set; }
    /// <summary>Segment-boundary prefix: "/api" matches "/api" and "/api/x", not "/apix".</summary>
    public string? PathPrefix { get; set; }
    public List<string>? Methods { get; set; }
}

public sealed class DirectResponseConfig
{
    public int Status { get; set; } = 200;
    public string? ContentType { get; set; }
    public string? Body { get; set; }
    public Dictionary<string, string>? Headers { get; set; }
}

public sealed class RedirectConfig
{
    /// <summary>301, 302, 303, 307 or 308. Default 302.</summary>
    public int Status { get; set; } = 302;
    /// <summary>Location template; "{name}" inserts a path parameter, "{path}" and "{query}" the request's.</summary>
    public string? Location { get; set; }
}

public sealed class ClusterConfig
{
    public string? Id { get; set; }
    public List<DestinationConfig>? Destinations { get; set; }
    /// <summary>"roundRobin" (weighted, default), "leastRequests", "powerOfTwoChoices" or "consistentHash".</summary>
    public string? LoadBalancing { get; set; }
    /// <summary>consistentHash key: "clientIp" (default), "header:NAME" or "cookie:NAME".</summary>
    public string? HashOn { get; set; }
    /// <summary>"http1" (default) or "http2": h2 by ALPN with tls, h2c by prior knowledge without (gRPC needs it).</summary>
    public string? Protocol { get; set; }
    public HealthCheckConfig? HealthCheck { get; set; }
    /// <summary>TLS to the destinations; absent = plain HTTP.</summary>
    public UpstreamTlsConfig? Tls { get; set; }
    /// <summary>Connections to one destination (idle + busy); past it requests get 503. Default 1024.</summary>
    public int? MaxConnectionsPerDestination { get; set; }
    /// <summary>Requests that may wait (up to the connect timeout) for a connection at the cap; past it 503. Default 1024.</summary>
    public int? MaxPendingRequestsPerDestination { get; set; }
    public ClusterTimeoutsConfig? Timeouts { get; set; }
    /// <summary>Requests retrying at once (on another destination): percent of those in flight, at least the minimum.</summary>
    public RetryBudgetConfig? RetryBudget { get; set; }
}

public sealed class RetryBudgetConfig
{
    /// <summary>Default 20 (Envoy's default); 0 with minRetryConcurrency 0 turns retries off.</summary>
    public int? Percent { get; set; }
    /// <summary>Default 3.</summary>
    public int? MinRetryConcurrency { get; set; }
}

public sealed class UpstreamTlsConfig
{
    /// <summary>SNI and the name checked in the upstream's certificate; default: the destination host.</summary>
    public string? ServerName { get; set; }
    /// <summary>PEM bundle of trusted CAs; default: the system trust store.</summary>
    public string? CaFile { get; set; }
    /// <summary>Client certificate and key (PEM) for mTLS to the upstream.</summary>
    public string? ClientCertificate { get; set; }
    public string? ClientKey { get; set; }
    /// <summary>Skip certificate verification: tests only, logged as a warning at every start.</summary>
    public bool InsecureSkipVerify { get; set; }
}

public sealed class HealthCheckConfig
{
    public ActiveHealthConfig? Active { get; set; }
    public PassiveHealthConfig? Passive { get; set; }
}

public sealed class ActiveHealthConfig
{
    public string? Interval { get; set; }
    public string? Timeout { get; set; }
    public string? Path { get; set; }
    /// <summary>"200-399" (default) or a single status.</summary>
    public string? ExpectedStatus { get; set; }
    public int? HealthyThreshold { get; set; }
    public int? UnhealthyThreshold { get; set; }
}

public sealed class PassiveHealthConfig
{
    /// <summary>0 turns passive ejection off. Default 5.</summary>
    public int? ConsecutiveFailures { get; set; }
    public string? EjectionTime { get; set; }
    public int? MaxEjectionPercent { get; set; }
    /// <summary>Eject when failures reach this percent of a destination's requests in an interval; 0 (default) = off.</summary>
    public int? FailurePercentage { get; set; }
    public int? FailurePercentageMinimumRequests { get; set; }
    public string? FailurePercentageInterval { get; set; }
}

public sealed class ClusterTimeoutsConfig
{
    public string? Connect { get; set; }
    public string? ResponseHeaders { get; set; }
    public string? Idle { get; set; }
    /// <summary>An upgraded connection (WebSocket) with no byte either way for this long is closed.</summary>
    public string? TunnelIdle { get; set; }
    /// <summary>The whole exchange, retries included; a request past it gets 504 (or is cut if the response started). Default: none.</summary>
    public string? Total { get; set; }
}

public sealed class DestinationConfig
{
    /// <summary>"host:port" or "ip:port" ([v6]:port); plain HTTP/1.1.</summary>
    public string? Address { get; set; }
    public int Weight { get; set; } = 1;
}

public sealed class AdminConfig
{
    /// <summary>Unix socket of the admin API. Default /run/appliance/admin.sock.</summary>
    public string? SocketPath { get; set; }
    /// <summary>Members of this group may use the admin socket (besides root and the service user). Default "appliance-admin".</summary>
    public string? Group { get; set; }
    /// <summary>Default true. Nothing administrative is ever reachable over TCP.</summary>
    public bool Enabled { get; set; } = true;
}

public sealed class AiConfig
{
    public List<AiProviderConfig>? Providers { get; set; }
    public List<AiModelConfig>? Models { get; set; }
    /// <summary>Largest chat request body accepted (413 beyond). Default "4MiB".</summary>
    public string? MaxRequestBytes { get; set; }
    /// <summary>Largest answer a provider may send when not streaming, and largest single event of a stream. Default "8MiB".</summary>
    public string? MaxResponseBytes { get; set; }
}

public sealed class AiProviderConfig
{
    public string? Id { get; set; }
    /// <summary>"openai" (OpenAI or any server with its chat completions API), "anthropic" or "gemini".</summary>
    public string? Kind { get; set; }
    /// <summary>The API's base: "https://api.openai.com/v1", "https://api.anthropic.com", "https://generativelanguage.googleapis.com".</summary>
    public string? BaseUrl { get; set; }
    /// <summary>A file holding the provider's API key (read on every apply; trailing whitespace dropped).</summary>
    public string? ApiKeyFile { get; set; }
    /// <summary>An environment variable holding the provider's API key (read on every apply).</summary>
    public string? ApiKeyEnv { get; set; }
    /// <summary>
    /// A systemd credential holding the key: the file NAME, or providers_NAME (the packaged unit's
    /// LoadCredential=providers:/etc/appliance/credentials), in $CREDENTIALS_DIRECTORY. Encrypted ones
    /// (LoadCredentialEncrypted=, systemd-creds) are decrypted by systemd before the service reads them.
    /// </summary>
    public string? ApiKeyCredential { get; set; }
    /// <summary>How long one answer may take, streaming included. Default "10m".</summary>
    public string? Timeout { get; set; }
}

public sealed class AiModelConfig
{
    /// <summary>The name clients give as "model".</summary>
    public string? Name { get; set; }
    /// <summary>The id of the provider that serves it.</summary>
    public string? Provider { get; set; }
    /// <summary>The provider's own name for the model. Default: <see cref="Name"/>.</summary>
    public string? Model { get; set; }
    /// <summary>The answer's token limit when the request sets none (Anthropic requires one). Default 4096.</summary>
    public int? MaxTokens { get; set; }
    /// <summary>Models (by name) tried in order when this one's provider fails before answering: unreachable, past its timeout, 408, 429, 5xx, or refusing the gateway's key.</summary>
    public List<string>? Fallbacks { get; set; }
    /// <summary>Prices per million tokens, in the operator's currency: what each answer costs (access log, metrics).</summary>
    public AiCostConfig? Cost { get; set; }
}

/// <summary>ai.models[].cost: prices per million tokens (0 to 100000), as providers publish them.</summary>
public sealed class AiCostConfig
{
    /// <summary>Input (prompt) tokens. Required.</summary>
    public decimal? Input { get; set; }
    /// <summary>Cached input tokens (prompt-cache reads). Default: the input price.</summary>
    public decimal? CachedInput { get; set; }
    /// <summary>Output tokens, reasoning included. Required.</summary>
    public decimal? Output { get; set; }
}

public sealed class AiRouteConfig
{
    /// <summary>The models this route serves, by name. Default: every model of the ai section.</summary>
    public List<string>? Models { get; set; }
}
