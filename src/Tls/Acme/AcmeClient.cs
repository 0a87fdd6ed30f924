using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

namespace Appliance.Tls.Acme;

/// <summary>
/// The ACME protocol (RFC 8555) over HttpClient, one call per resource: directory, newAccount, newOrder,
/// authorizations, challenges, finalize, certificate download. Every POST is a JWS signed with the account key
/// (<see cref="JsonWebSignature"/>) carrying a fresh nonce (<see cref="ReplayNonces"/>); a <c>badNonce</c> answer is
/// retried once with the nonce it brought (§6.5). Errors are <see cref="AcmeProblemException"/> (the server's problem
/// document) or <see cref="AcmeProtocolException"/> (an answer that cannot be used). Response bodies are capped.
/// One client serves one issuance at a time (it is not meant to be shared between concurrent flows).
/// </summary>
public sealed class AcmeClient : IDisposable
{
    /// <summary>Directory, account, order, authorization and problem documents are a few KiB.</summary>
    public const int MaxJsonBytes = 256 * 1024;

    /// <summary>A PEM chain is a few KiB; alternate chains or long ones stay far below this.</summary>
    public const int MaxCertificateChainBytes = 1024 * 1024;

    private const string JoseJson = "application/jose+json";
    private const string PemChain = "application/pem-certificate-chain";

    private readonly HttpClient _http;
    private readonly Uri _directoryUrl;
    private readonly JsonWebSignature _jws;
    private AcmeDirectory? _directory;

    /// <param name="directoryUrl">The server's directory (https).</param>
    /// <param name="accountKey">ECDSA P-256 account key.</param>
    /// <param name="handler">Transport; <see cref="CreateHandler"/> makes one with the server's trust anchors.</param>
    /// <param name="requestTimeout">Per request; default 30 s.</param>
    public AcmeClient(Uri directoryUrl, ECDsa accountKey, HttpMessageHandler handler, TimeSpan? requestTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(directoryUrl);
        ArgumentNullException.ThrowIfNull(handler);
        _directoryUrl = directoryUrl;
        _jws = new JsonWebSignature(accountKey);
        _http = new HttpClient(handler, disposeHandler: true) { Timeout = requestTimeout ?? TimeSpan.FromSeconds(30) };
        // RFC 8555 §6.1: clients MUST send a User-Agent.
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("appliance-acme/0.1");
    }

    /// <summary>The account URL (the JWS <c>kid</c>); set by <see cref="NewAccountAsync"/> or from a cache.</summary>
    public string? AccountUrl { get; set; }

    /// <summary>The account key's JWK thumbprint, for key authorizations.</summary>
    public string Thumbprint => _jws.Thumbprint;

    public ReplayNonces Nonces { get; } = new();

    /// <summary>
    /// HTTPS to the ACME server, trusting <paramref name="trustAnchors"/> only when given (a test CA such as pebble's,
    /// or a private CA), the system store otherwise. No redirects: ACME URLs come from the directory.
    /// </summary>
    public static SocketsHttpHandler CreateHandler(X509Certificate2Collection? trustAnchors)
    {
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            ConnectTimeout = TimeSpan.FromSeconds(15),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            AutomaticDecompression = DecompressionMethods.None,
        };
        if (trustAnchors is { Count: > 0 })
        {
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0
                    || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
                {
                    return false;
                }

                using var leaf = new X509Certificate2(certificate);
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                chain.ChainPolicy.CustomTrustStore.AddRange(trustAnchors);
                return chain.Build(leaf);
            };
        }

        return handler;
    }

    /// <summary>RFC 8555 §7.1.1: GET the directory (once per client).</summary>
    public async Task<AcmeDirectory> GetDirectoryAsync(CancellationToken cancellationToken)
    {
        if (_directory is { } known)
        {
            return known;
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, _directoryUrl);
        using HttpResponseMessage response = await SendAsync(request, "directory", cancellationToken).ConfigureAwait(false);
        KeepNonce(response);
        byte[] body = await ReadBodyAsync(response, MaxJsonBytes, "directory", cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw AcmeResponseParser.Problem(body, (int)response.StatusCode, "directory");
        }

        return _directory = AcmeResponseParser.Directory(body);
    }

    /// <summary>
    /// RFC 8555 §7.3: creates the account (or finds the existing one for this key: 200 instead of 201), agreeing to
    /// the terms of service, and sets <see cref="AccountUrl"/> from the Location header.
    /// </summary>
    public async Task<AcmeResponse<AcmeAccount>> NewAccountAsync(string? email, CancellationToken cancellationToken)
    {
        AcmeDirectory directory = await GetDirectoryAsync(cancellationToken).ConfigureAwait(false);
        var request = new AcmeNewAccountRequest
        {
            TermsOfServiceAgreed = true,
            Contact = string.IsNullOrEmpty(email) ? null : ["mailto:" + email],
        };
        Raw raw = await PostAsync(directory.NewAccount!, Json(request, AcmeJsonContext.Default.AcmeNewAccountRequest), useJwk: true,
            "newAccount", cancellationToken).ConfigureAwait(false);
        string location = raw.Location ?? throw new AcmeProtocolException("newAccount: the answer has no Location (the account URL)");
        AcmeAccount account = AcmeResponseParser.Account(raw.Body);
        AccountUrl = location;
        return new(account, location, raw.RetryAfter);
    }

    /// <summary>RFC 8555 §7.4: an order for DNS names; Location is the order URL.</summary>
    public async Task<AcmeResponse<AcmeOrder>> NewOrderAsync(IReadOnlyList<string> names, CancellationToken cancellationToken)
    {
        AcmeDirectory directory = await GetDirectoryAsync(cancellationToken).ConfigureAwait(false);
        var request = new AcmeNewOrderRequest { Identifiers = [.. names.Select(n => new AcmeIdentifier { Type = "dns", Value = n })] };
        Raw raw = await PostAsync(directory.NewOrder!, Json(request, AcmeJsonContext.Default.AcmeNewOrderRequest), useJwk: false,
            "newOrder", cancellationToken).ConfigureAwait(false);
        string location = raw.Location ?? throw new AcmeProtocolException("newOrder: the answer has no Location (the order URL)");
        return new(AcmeResponseParser.Order(raw.Body), location, raw.RetryAfter);
    }

    /// <summary>POST-as-GET an order (§7.4, for polling).</summary>
    public async Task<AcmeResponse<AcmeOrder>> GetOrderAsync(string url, CancellationToken cancellationToken)
    {
        Raw raw = await PostAsync(url, null, useJwk: false, "order", cancellationToken).ConfigureAwait(false);
        return new(AcmeResponseParser.Order(raw.Body), url, raw.RetryAfter);
    }

    /// <summary>POST-as-GET an authorization (§7.5).</summary>
    public async Task<AcmeResponse<AcmeAuthorization>> GetAuthorizationAsync(string url, CancellationToken cancellationToken)
    {
        Raw raw = await PostAsync(url, null, useJwk: false, "authorization", cancellationToken).ConfigureAwait(false);
        return new(AcmeResponseParser.Authorization(raw.Body), url, raw.RetryAfter);
    }

    /// <summary>RFC 8555 §7.5.1: tells the server the challenge is ready to be validated (payload "{}").</summary>
    public async Task<AcmeResponse<AcmeChallenge>> RespondToChallengeAsync(string url, CancellationToken cancellationToken)
    {
        Raw raw = await PostAsync(url, Json(new AcmeEmptyObject(), AcmeJsonContext.Default.AcmeEmptyObject), useJwk: false,
            "challenge", cancellationToken).ConfigureAwait(false);
        return new(AcmeResponseParser.Challenge(raw.Body), url, raw.RetryAfter);
    }

    /// <summary>RFC 8555 §7.4: sends the CSR (DER) to the order's finalize URL.</summary>
    public async Task<AcmeResponse<AcmeOrder>> FinalizeAsync(string url, byte[] csr, CancellationToken cancellationToken)
    {
        var request = new AcmeFinalizeRequest { Csr = System.Buffers.Text.Base64Url.EncodeToString(csr) };
        Raw raw = await PostAsync(url, Json(request, AcmeJsonContext.Default.AcmeFinalizeRequest), useJwk: false,
            "finalize", cancellationToken).ConfigureAwait(false);
        return new(AcmeResponseParser.Order(raw.Body), raw.Location ?? url, raw.RetryAfter);
    }

    /// <summary>RFC 8555 §7.4.2: POST-as-GET the certificate URL; the answer is a PEM chain, leaf first.</summary>
    public async Task<string> DownloadCertificateAsync(string url, CancellationToken cancellationToken)
    {
        Raw raw = await PostAsync(url, null, useJwk: false, "certificate", cancellationToken, PemChain, MaxCertificateChainBytes).ConfigureAwait(false);
        string text;
        try
        {
            text = new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true).GetString(raw.Body);
        }
        catch (System.Text.DecoderFallbackException e)
        {
            throw new AcmeProtocolException("certificate: the chain is not text (expected application/pem-certificate-chain)", e);
        }

        if (!text.Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal))
        {
            throw new AcmeProtocolException($"certificate: no PEM certificate in the answer ({raw.ContentType ?? "no content type"})");
        }

        return text;
    }

    public void Dispose() => _http.Dispose();

    private static byte[] Json<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) =>
        JsonSerializer.SerializeToUtf8Bytes(value, type);

    private readonly record struct Raw(byte[] Body, string? Location, TimeSpan? RetryAfter, string? ContentType);

    private async Task<Raw> PostAsync(string url, byte[]? payload, bool useJwk, string context, CancellationToken cancellationToken,
        string accept = "application/json", int maxBytes = MaxJsonBytes)
    {
        AcmeResponseParser.RequireUrl(url, context, "url");
        AcmeDirectory directory = await GetDirectoryAsync(cancellationToken).ConfigureAwait(false);
        for (int attempt = 0; ; attempt++)
        {
            string nonce = await NonceAsync(directory, cancellationToken).ConfigureAwait(false);
            string? kid = useJwk ? null : AccountUrl ?? throw new InvalidOperationException("no ACME account URL: register the account first");
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(_jws.Sign(url, nonce, kid, payload)) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(JoseJson);
            request.Headers.Accept.ParseAdd(accept);
            using HttpResponseMessage response = await SendAsync(request, context, cancellationToken).ConfigureAwait(false);
            KeepNonce(response);
            byte[] body = await ReadBodyAsync(response, maxBytes, context, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                AcmeProblemException problem = AcmeResponseParser.Problem(body, (int)response.StatusCode, context);
                if (attempt == 0 && problem.Is("badNonce"))
                {
                    continue; // RFC 8555 §6.5: the answer carried a fresh nonce; try once more with it
                }

                throw problem;
            }

            string? location = null;
            if (response.Headers.Location is { } l)
            {
                Uri absolute = l.IsAbsoluteUri ? l : new Uri(new Uri(url), l);
                location = AcmeResponseParser.RequireUrl(absolute.OriginalString, context, "Location").AbsoluteUri;
            }

            return new Raw(body, location, RetryAfter(response), response.Content.Headers.ContentType?.MediaType);
        }
    }

    /// <summary>A kept nonce, or a fresh one from newNonce (RFC 8555 §7.2: HEAD, 200 with Replay-Nonce).</summary>
    private async Task<string> NonceAsync(AcmeDirectory directory, CancellationToken cancellationToken)
    {
        if (Nonces.TryTake(out string nonce))
        {
            return nonce;
        }

        using var request = new HttpRequestMessage(HttpMethod.Head, directory.NewNonce);
        using HttpResponseMessage response = await SendAsync(request, "newNonce", cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new AcmeProtocolException($"newNonce: HTTP {(int)response.StatusCode}");
        }

        KeepNonce(response);
        return Nonces.TryTake(out nonce) ? nonce : throw new AcmeProtocolException("newNonce: no valid Replay-Nonce in the answer");
    }

    private void KeepNonce(HttpResponseMessage response)
    {
        if (response.Headers.TryGetValues("Replay-Nonce", out IEnumerable<string>? values))
        {
            foreach (string value in values.Take(4))
            {
                Nonces.Add(value.Trim());
            }
        }
    }

    /// <summary>RFC 8555 §7.4 (and RFC 9110 §10.2.3): Retry-After as seconds or a date; null when absent.</summary>
    private static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        RetryConditionHeaderValue? retry = response.Headers.RetryAfter;
        TimeSpan? wait = retry?.Delta ?? (retry?.Date is { } date ? date - DateTimeOffset.UtcNow : null);
        return wait is { } w ? (w < TimeSpan.Zero ? TimeSpan.Zero : w) : null;
    }

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, string context, CancellationToken cancellationToken)
    {
        try
        {
            return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new AcmeProtocolException($"{context}: cannot reach the ACME server at {request.RequestUri?.GetLeftPart(UriPartial.Authority)}: {e.Message}", e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new AcmeProtocolException($"{context}: the ACME server did not answer within {_http.Timeout.TotalSeconds:0} s", e);
        }
    }

    /// <summary>The body, refused past <paramref name="maxBytes"/> whether or not Content-Length announced it.</summary>
    private static async Task<byte[]> ReadBodyAsync(HttpResponseMessage response, int maxBytes, string context, CancellationToken cancellationToken)
    {
        if (response.Content.Headers.ContentLength is { } length && length > maxBytes)
        {
            throw new AcmeProtocolException($"{context}: the answer is {length} bytes, over the {maxBytes}-byte cap");
        }

        using Stream stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        var buffer = new MemoryStream();
        byte[] chunk = new byte[16 * 1024];
        while (true)
        {
            int read = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return buffer.ToArray();
            }

            if (buffer.Length + read > maxBytes)
            {
                throw new AcmeProtocolException($"{context}: the answer is over the {maxBytes}-byte cap");
            }

            buffer.Write(chunk, 0, read);
        }
    }
}

/// <summary>A parsed ACME answer with what its headers said: Location (the resource's URL) and Retry-After.</summary>
public readonly record struct AcmeResponse<T>(T Value, string? Location, TimeSpan? RetryAfter);
