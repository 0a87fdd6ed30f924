using System.Buffers;
using System.Collections.Concurrent;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text.Json;
using Appliance.Protocol.Headers;
using Appliance.Server;

namespace Appliance.Policies;

/// <summary>
/// routes[].policies.jwt as compiled: the keys (from <see cref="JwksPath"/>), the issuer and audiences a token must
/// name (when given), the clock skew allowed on exp and nbf, and the header carrying the token (null:
/// <c>Authorization: Bearer</c>).
/// </summary>
public sealed record JwtSettings(JwtKeySet Keys, string JwksPath, string? Issuer, string[] Audiences, TimeSpan ClockSkew, string? HeaderName);

/// <summary>
/// routes[].policies.jwt: the request must carry a JSON Web Token (RFC 7519) in compact JWS form, signed by one of
/// the configured keys with an algorithm of that key's type (RFC 7518: RS*, PS*, ES*, HS*; never "none"), with an
/// "exp" in the future, an "nbf" (when present) in the past, and the configured "iss" and one of the "aud" values
/// (when configured), each time comparison allowing the clock skew. A JWS "crit" header is refused (RFC 7515
/// §4.1.11: no extension is understood here). No token: 401 with <c>WWW-Authenticate: Bearer</c>; a token that
/// fails: 401 with <c>error="invalid_token"</c> and the reason in the problem body (expired, wrong audience, …).
/// The token's "sub" becomes the request's <see cref="RequestContext.Subject"/> (rate limits by "subject", the
/// access log). A token whose signature, issuer and audience passed is remembered (up to <see cref="MaxRemembered"/> tokens, by
/// their whole bytes): presented again, only its exp and nbf are compared, as Envoy's jwt_authn caches verified
/// tokens; an RSA-2048 verification is some tens of microseconds, a remembered token well under one. A remembered
/// token is still refused the moment it expires.
/// </summary>
public sealed class JwtPolicy : RequestPolicy
{
    /// <summary>Longer tokens are refused unread (a header field carrying one is far below the request header limit).</summary>
    public const int MaxTokenBytes = 8192;

    private static readonly byte[] s_missing = ProblemDetails.Json(401, "A bearer token is required.");
    private static readonly byte[] s_malformed = ProblemDetails.Json(401, "The token is not a JSON Web Token in compact JWS form.");
    private static readonly byte[] s_algorithm = ProblemDetails.Json(401, "The token's algorithm is not one its key may use.");
    private static readonly byte[] s_unknownKey = ProblemDetails.Json(401, "No configured key verifies the token's signature.");
    private static readonly byte[] s_expired = ProblemDetails.Json(401, "The token has expired.");
    private static readonly byte[] s_notYet = ProblemDetails.Json(401, "The token is not valid yet (nbf).");
    private static readonly byte[] s_noExpiry = ProblemDetails.Json(401, "The token has no expiry (exp).");
    private static readonly byte[] s_issuer = ProblemDetails.Json(401, "The token's issuer (iss) is not the one this API trusts.");
    private static readonly byte[] s_audience = ProblemDetails.Json(401, "The token's audience (aud) does not include this API.");
    private static readonly byte[] s_twoTokens = ProblemDetails.Json(400, "The request carries more than one Authorization field.");
    private static readonly byte[] s_ambiguousKey = ProblemDetails.Json(401, "The token names no key (kid) and several keys could verify it.");
    private static readonly byte[] s_critical = ProblemDetails.Json(401, "The token names critical header extensions (crit) that are not understood.");

    /// <summary>Tokens remembered as verified at most, and their bytes at most; past either the memory starts again empty.</summary>
    public const int MaxRemembered = 10_000;

    public const int MaxRememberedBytes = 16 << 20;

    private int _rememberedCount;
    private long _rememberedBytes;

    private readonly ConcurrentDictionary<byte[], Lifetime> _verified = new(ByteKeyComparer.Instance);
    private readonly ConcurrentDictionary<byte[], Lifetime>.AlternateLookup<ReadOnlySpan<byte>> _verifiedLookup;
    private readonly JwtSettings _settings;
    private readonly byte[]? _header;
    private readonly byte[]? _issuer;
    private readonly byte[][] _audiences;
    private readonly byte[] _challenge;
    private readonly byte[] _invalidChallenge;
    private readonly byte[] _requestChallenge;

    public JwtPolicy(JwtSettings settings, string? tenant)
    {
        _settings = settings;
        _verifiedLookup = _verified.GetAlternateLookup<ReadOnlySpan<byte>>();
        _header = settings.HeaderName is null ? null : System.Text.Encoding.ASCII.GetBytes(settings.HeaderName);
        _issuer = settings.Issuer is null ? null : System.Text.Encoding.UTF8.GetBytes(settings.Issuer);
        _audiences = [.. settings.Audiences.Select(System.Text.Encoding.UTF8.GetBytes)];
        // RFC 6750's Bearer where the token comes as Authorization: Bearer; a token in another header gets a challenge
        // naming that header instead (the client would otherwise send Authorization, which this route ignores).
        string scheme = settings.HeaderName is null ? "Bearer" : "JWT";
        string?[] realm = [tenant is null ? null : $"realm=\"{tenant}\"", settings.HeaderName is null ? null : $"header=\"{settings.HeaderName}\""];
        _challenge = Challenge(scheme, realm);
        _invalidChallenge = Challenge(scheme, [.. realm, "error=\"invalid_token\""]);
        _requestChallenge = Challenge(scheme, [.. realm, "error=\"invalid_request\""]);
    }

    public override string Name => "jwt";

    public JwtSettings Settings => _settings;

    public override ValueTask<PolicyVerdict> CheckAsync(RequestContext context, PolicyEnvironment environment)
    {
        ReadOnlySpan<byte> token;
        if (_header is not null)
        {
            if (!context.RequestHeaders.TryGetValue(_header, out token) || token.IsEmpty)
            {
                return new(Refuse(401, s_missing, challenge: _challenge));
            }
        }
        else if (context.RequestHeaders.CountOf(KnownHeader.Authorization) > 1)
        {
            return new(Refuse(400, s_twoTokens, challenge: _requestChallenge)); // which one would the upstream read?
        }
        else if (BearerTokens.Read(context.RequestHeaders, out token) != BearerToken.Present) // "Bearer" alone: no token either
        {
            return new(Refuse(401, s_missing, challenge: _challenge));
        }

        byte[]? problem = Verify(token, environment.Time.GetUtcNow().ToUnixTimeSeconds(), out string? subject);
        if (problem is not null)
        {
            return new(Refuse(401, problem, challenge: _invalidChallenge));
        }

        context.Subject = subject;
        return new(PolicyVerdict.Pass);
    }

    /// <summary>Null when the token is good; otherwise the problem body saying why not.</summary>
    internal byte[]? Verify(ReadOnlySpan<byte> token, long now) => Verify(token, now, out _);

    /// <summary>Null when the token is good, with its "sub" (made once per token, then remembered); otherwise why not.</summary>
    internal byte[]? Verify(ReadOnlySpan<byte> token, long now, out string? subject)
    {
        subject = null;
        if (token.Length > MaxTokenBytes || !IsCanonical(token))
        {
            return s_malformed; // one spelling per token: no variant of a good token is another cache entry
        }

        if (_verifiedLookup.TryGetValue(token, out Lifetime remembered))
        {
            byte[]? problem = remembered.Check(now, (long)_settings.ClockSkew.TotalSeconds);
            if (problem is not null && _verifiedLookup.TryRemove(token, out _))
            {
                Interlocked.Decrement(ref _rememberedCount);
                Interlocked.Add(ref _rememberedBytes, -token.Length);
            }

            subject = remembered.Subject;
            return problem;
        }

        int first = token.IndexOf((byte)'.');
        int second = first < 0 ? -1 : token[(first + 1)..].IndexOf((byte)'.');
        if (first <= 0 || second <= 0 || token[(first + second + 2)..].Contains((byte)'.'))
        {
            return s_malformed;
        }

        second += first + 1;
        ReadOnlySpan<byte> signed = token[..second];
        Span<byte> header = stackalloc byte[1024];
        Span<byte> signature = stackalloc byte[512];
        if (first > 1360 || !Decode(token[..first], header, out int headerLength)
            || token.Length - second - 1 > 683 || !Decode(token[(second + 1)..], signature, out int signatureLength))
        {
            return s_malformed;
        }

        if (ReadHeader(header[..headerLength], out JwsHeader jws) is { } headerProblem)
        {
            return headerProblem;
        }

        if (JwtAlgorithms.TypeOf(jws.Algorithm) is not { } type)
        {
            return s_algorithm;
        }

        JwtKey? chosen = null;
        foreach (JwtKey key in _settings.Keys.Keys)
        {
            if ((jws.KeyId is not null && key.Id != jws.KeyId) || !key.Allows(jws.Algorithm, type))
            {
                continue;
            }

            if (chosen is not null)
            {
                return s_ambiguousKey; // no kid and several keys: one signature check per key would be anyone's to ask for
            }

            chosen = key;
        }

        if (chosen is null)
        {
            return s_algorithm; // no key may verify this algorithm (a named key of another type, or none for it)
        }

        if (!Check(chosen, jws.Algorithm, signed, signature[..signatureLength]))
        {
            return s_unknownKey;
        }

        ReadOnlySpan<byte> payload = token[(first + 1)..second];
        byte[]? rented = null;
        Span<byte> claims = payload.Length <= 2048 ? stackalloc byte[1536] : (rented = ArrayPool<byte>.Shared.Rent(Base64Url.GetMaxDecodedLength(payload.Length)));
        try
        {
            if (!Decode(payload, claims, out int claimsLength))
            {
                return s_malformed;
            }

            byte[]? problem = CheckClaims(claims[..claimsLength], now, out Lifetime lifetime);
            if (problem is null)
            {
                if (Volatile.Read(ref _rememberedCount) >= MaxRemembered || Interlocked.Read(ref _rememberedBytes) + token.Length > MaxRememberedBytes)
                {
                    _verified.Clear(); // rare: counts reset with it (a racing add may be counted twice: an earlier clear)
                    Volatile.Write(ref _rememberedCount, 0);
                    Interlocked.Exchange(ref _rememberedBytes, 0);
                }

                if (_verifiedLookup.TryAdd(token, lifetime))
                {
                    Interlocked.Increment(ref _rememberedCount);
                    Interlocked.Add(ref _rememberedBytes, token.Length);
                }
                subject = lifetime.Subject;
            }

            return problem;
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>
    /// Three base64url segments (RFC 7515 §7.1) and nothing else: no padding, no whitespace (which the decoder would
    /// skip), no length that cannot be base64, and no unused low bits set in a segment's last character, so that
    /// each token has exactly one spelling.
    /// </summary>
    private static bool IsCanonical(ReadOnlySpan<byte> token)
    {
        int start = 0, dots = 0;
        for (int i = 0; i <= token.Length; i++)
        {
            if (i < token.Length && token[i] != (byte)'.')
            {
                if (Value(token[i]) < 0)
                {
                    return false;
                }

                continue;
            }

            int length = i - start;
            if (length % 4 == 1 || (length % 4 == 2 && (Value(token[i - 1]) & 0x0F) != 0) || (length % 4 == 3 && (Value(token[i - 1]) & 0x03) != 0))
            {
                return false;
            }

            dots += i < token.Length ? 1 : 0;
            start = i + 1;
        }

        return dots == 2;

        static int Value(byte b) => b switch
        {
            >= (byte)'A' and <= (byte)'Z' => b - 'A',
            >= (byte)'a' and <= (byte)'z' => b - 'a' + 26,
            >= (byte)'0' and <= (byte)'9' => b - '0' + 52,
            (byte)'-' => 62,
            (byte)'_' => 63,
            _ => -1,
        };
    }

    /// <summary>base64url without padding (RFC 7515 §2); false, never an exception, for anything else or too long.</summary>
    private static bool Decode(ReadOnlySpan<byte> text, Span<byte> destination, out int written) =>
        Base64Url.DecodeFromUtf8(text, destination, out int consumed, out written) == OperationStatus.Done && consumed == text.Length;

    private readonly ref struct JwsHeader
    {
        public string Algorithm { get; init; }

        public string? KeyId { get; init; }
    }

    /// <summary>The JOSE header: "alg" (matched against the known names without allocating), "kid", no "crit".</summary>
    private byte[]? ReadHeader(ReadOnlySpan<byte> json, out JwsHeader header)
    {
        header = default;
        string? alg = null, kid = null;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 4 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return s_malformed;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("alg"u8))
                {
                    reader.Read();
                    alg = reader.TokenType == JsonTokenType.String ? KnownAlgorithm(ref reader) : null;
                    if (alg is null)
                    {
                        return s_algorithm;
                    }
                }
                else if (reader.ValueTextEquals("kid"u8))
                {
                    reader.Read();
                    kid = reader.TokenType == JsonTokenType.String ? KeyIdOf(ref reader) : null;
                    if (kid is null)
                    {
                        return s_unknownKey;
                    }
                }
                else if (reader.ValueTextEquals("crit"u8))
                {
                    return s_critical;
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
            {
                return s_malformed;
            }

            if (alg is null)
            {
                return s_algorithm;
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return s_malformed;
        }

        header = new JwsHeader { Algorithm = alg, KeyId = kid };
        return null;
    }

    private static readonly string[] s_algorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "HS256", "HS384", "HS512"];

    private static string? KnownAlgorithm(ref Utf8JsonReader reader)
    {
        foreach (string alg in s_algorithms)
        {
            if (reader.ValueTextEquals(alg))
            {
                return alg;
            }
        }

        return null;
    }

    /// <summary>The configured key id the token names (the key's own string, so no allocation), or null for none of them.</summary>
    private string? KeyIdOf(ref Utf8JsonReader reader)
    {
        foreach (JwtKey key in _settings.Keys.Keys)
        {
            if (key.Id is not null && reader.ValueTextEquals(key.Id))
            {
                return key.Id;
            }
        }

        return null;
    }

    private static bool Check(JwtKey key, string alg, ReadOnlySpan<byte> signed, ReadOnlySpan<byte> signature)
    {
        HashAlgorithmName hash = alg.EndsWith("256", StringComparison.Ordinal) ? HashAlgorithmName.SHA256
            : alg.EndsWith("384", StringComparison.Ordinal) ? HashAlgorithmName.SHA384 : HashAlgorithmName.SHA512;
        try
        {
            switch (key.Type)
            {
                case JwtKeyType.Rsa:
                    return key.Rsa!.VerifyData(signed, signature, hash, alg[0] == 'P' ? RSASignaturePadding.Pss : RSASignaturePadding.Pkcs1);
                case JwtKeyType.Ec:
                    return signature.Length == 2 * key.CurveBytes && key.Ecdsa!.VerifyData(signed, signature, hash);
                default:
                    Span<byte> mac = stackalloc byte[64];
                    int n = hash == HashAlgorithmName.SHA256 ? HMACSHA256.HashData(key.Secret, signed, mac)
                        : hash == HashAlgorithmName.SHA384 ? HMACSHA384.HashData(key.Secret, signed, mac) : HMACSHA512.HashData(key.Secret, signed, mac);
                    return CryptographicOperations.FixedTimeEquals(mac[..n], signature);
            }
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    /// <summary>exp (required), nbf, iss and aud, each at most once (RFC 7519 §4: a duplicate is refused).</summary>
    private byte[]? CheckClaims(ReadOnlySpan<byte> json, long now, out Lifetime lifetime)
    {
        lifetime = default;
        double expires = 0, notBefore = double.MinValue;
        string? subject = null;
        long skew = (long)_settings.ClockSkew.TotalSeconds;
        bool expSeen = false, nbfSeen = false, issSeen = false, audSeen = false, audienceMatched = _audiences.Length == 0;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 16 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return s_malformed;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("exp"u8) || reader.ValueTextEquals("nbf"u8))
                {
                    bool exp = reader.ValueTextEquals("exp"u8);
                    if (exp ? expSeen : nbfSeen)
                    {
                        return s_malformed;
                    }

                    reader.Read();
                    if (reader.TokenType != JsonTokenType.Number || !reader.TryGetDouble(out double seconds) || !double.IsFinite(seconds))
                    {
                        return s_malformed;
                    }

                    if (exp)
                    {
                        expSeen = true;
                        expires = seconds;
                        if (now - skew >= seconds)
                        {
                            return s_expired;
                        }
                    }
                    else
                    {
                        nbfSeen = true;
                        notBefore = seconds;
                        if (seconds > now + skew)
                        {
                            return s_notYet;
                        }
                    }
                }
                else if (reader.ValueTextEquals("sub"u8))
                {
                    reader.Read();
                    if (subject is not null || reader.TokenType != JsonTokenType.String)
                    {
                        return s_malformed;
                    }

                    subject = reader.GetString();
                }
                else if (reader.ValueTextEquals("iss"u8))
                {
                    reader.Read();
                    if (issSeen || reader.TokenType != JsonTokenType.String)
                    {
                        return s_malformed;
                    }

                    issSeen = true;
                    if (_issuer is not null && !reader.ValueTextEquals(_issuer))
                    {
                        return s_issuer;
                    }
                }
                else if (reader.ValueTextEquals("aud"u8))
                {
                    reader.Read();
                    if (audSeen)
                    {
                        return s_malformed;
                    }

                    audSeen = true;
                    if (reader.TokenType == JsonTokenType.String)
                    {
                        audienceMatched |= Audience(ref reader);
                    }
                    else if (reader.TokenType == JsonTokenType.StartArray)
                    {
                        while (reader.Read() && reader.TokenType == JsonTokenType.String)
                        {
                            audienceMatched |= Audience(ref reader);
                        }

                        if (reader.TokenType != JsonTokenType.EndArray)
                        {
                            return s_malformed;
                        }
                    }
                    else
                    {
                        return s_malformed;
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
            {
                return s_malformed; // nothing may follow the claims object
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return s_malformed; // GetString on an unpaired surrogate escape, among others
        }

        lifetime = new Lifetime(expires, notBefore, subject);
        return !expSeen ? s_noExpiry
            : _issuer is not null && !issSeen ? s_issuer
            : !audienceMatched ? s_audience
            : null;
    }

    /// <summary>What is checked again each time a remembered token comes back: exp and nbf, with the skew.</summary>
    private readonly record struct Lifetime(double Expires, double NotBefore, string? Subject)
    {
        public byte[]? Check(long now, long skew) => now - skew >= Expires ? s_expired : NotBefore > now + skew ? s_notYet : null;
    }

    private bool Audience(ref Utf8JsonReader reader)
    {
        foreach (byte[] audience in _audiences)
        {
            if (reader.ValueTextEquals(audience))
            {
                return true;
            }
        }

        return false;
    }
}
