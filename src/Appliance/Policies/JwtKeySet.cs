using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text.Json;

namespace Appliance.Policies;

/// <summary>
/// The verification keys of a JWT policy, read from a JWK Set file (RFC 7517): RSA, EC (P-256, P-384, P-521) and
/// oct (HMAC) keys. A key is only ever used with algorithms of its own type (RSA: RS*/PS*, EC: the ES* of its curve,
/// oct: HS*), and with its "alg" alone when it names one: a token cannot choose HMAC over an RSA key's public
/// bytes, nor "none".
/// </summary>
public sealed class JwtKeySet
{
    private JwtKeySet(IReadOnlyList<JwtKey> keys) => Keys = keys;

    public IReadOnlyList<JwtKey> Keys { get; }

    /// <summary>Parses a JWK Set; null with the reason when it is not one this gateway can use.</summary>
    public static JwtKeySet? TryParse(ReadOnlySpan<byte> json, out string? error)
    {
        error = null;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 8 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("keys", out JsonElement keys)
                || keys.ValueKind != JsonValueKind.Array)
            {
                error = "is not a JWK Set: an object with a \"keys\" array";
                return null;
            }

            var parsed = new List<JwtKey>();
            int i = 0;
            foreach (JsonElement k in keys.EnumerateArray())
            {
                JwtKey? key = ParseKey(k, out string? keyError);
                if (key is null)
                {
                    error = $"keys[{i}]: {keyError}";
                    return null;
                }

                if (key.Id is not null && parsed.Any(p => p.Id == key.Id))
                {
                    error = $"keys[{i}]: \"kid\" \"{key.Id}\" is used twice";
                    return null;
                }

                parsed.Add(key);
                i++;
            }

            if (parsed.Count == 0)
            {
                error = "holds no keys";
                return null;
            }

            return new JwtKeySet(parsed);
        }
        catch (JsonException e)
        {
            error = $"is not valid JSON ({e.Message})";
            return null;
        }
    }

    private static JwtKey? ParseKey(JsonElement k, out string? error)
    {
        error = null;
        if (k.ValueKind != JsonValueKind.Object)
        {
            error = "is not an object";
            return null;
        }

        string? kty = Text(k, "kty");
        string? kid = Text(k, "kid");
        string? alg = Text(k, "alg");
        if (Text(k, "use") is { } use && use != "sig")
        {
            error = $"\"use\" is \"{use}\", not \"sig\"";
            return null;
        }

        if (k.TryGetProperty("d", out _) || (kty == "RSA" && k.TryGetProperty("p", out _)))
        {
            error = "holds a private key: give the gateway the public keys only";
            return null;
        }

        try
        {
            switch (kty)
            {
                case "RSA":
                    byte[]? n = Bytes(k, "n"), e = Bytes(k, "e");
                    if (n is null || e is null)
                    {
                        error = "an RSA key needs \"n\" and \"e\" (base64url)";
                        return null;
                    }

                    // RFC 7518 §6.3.1: big-endian without leading zeros. A modulus of 2048 to 4096 bits (larger ones
                    // sign more than a token's signature may hold), odd; an odd public exponent of at least 3 that fits
                    // 32 bits (e = 1 would make every value its own signature).
                    if (n.Length is < 256 or > 512 || n[0] == 0 || (n[^1] & 1) == 0)
                    {
                        error = "an RSA key's modulus must be 2048 to 4096 bits, without leading zero bytes";
                        return null;
                    }

                    if (e.Length is 0 or > 4 || e[0] == 0 || (e[^1] & 1) == 0 || (e.Length == 1 && e[0] < 3))
                    {
                        error = "an RSA key's exponent must be odd, at least 3, at most 32 bits, without leading zero bytes";
                        return null;
                    }

                    var rsa = RSA.Create();
                    rsa.ImportParameters(new RSAParameters { Modulus = n, Exponent = e });
                    return Checked(new JwtKey(kid, alg, JwtKeyType.Rsa, rsa, null, null, 0), out error);
                case "EC":
                    (ECCurve curve, int size, string name)? c = Text(k, "crv") switch
                    {
                        "P-256" => (ECCurve.NamedCurves.nistP256, 32, "ES256"),
                        "P-384" => (ECCurve.NamedCurves.nistP384, 48, "ES384"),
                        "P-521" => (ECCurve.NamedCurves.nistP521, 66, "ES512"),
                        _ => null,
                    };
                    byte[]? x = Bytes(k, "x"), y = Bytes(k, "y");
                    if (c is not { } ec || x?.Length != ec.size || y?.Length != ec.size)
                    {
                        error = c is null ? "an EC key needs \"crv\" P-256, P-384 or P-521" : "an EC key's \"x\" and \"y\" do not fit its curve";
                        return null;
                    }

                    var ecdsa = ECDsa.Create();
                    ecdsa.ImportParameters(new ECParameters { Curve = ec.curve, Q = new ECPoint { X = x, Y = y } });
                    return Checked(new JwtKey(kid, alg ?? ec.name, JwtKeyType.Ec, null, ecdsa, null, ec.size), out error, ec.name); // RFC 7518 §3.4: a curve, one algorithm
                case "oct":
                    byte[]? secret = Bytes(k, "k");
                    if (secret is not { Length: >= 32 })
                    {
                        error = "an oct key needs \"k\" of at least 32 bytes (RFC 7518 §3.2)";
                        return null;
                    }

                    return Checked(new JwtKey(kid, alg, JwtKeyType.Hmac, null, null, secret, 0), out error);
                default:
                    error = $"\"kty\" is {(kty is null ? "missing" : $"\"{kty}\"")}: RSA, EC or oct";
                    return null;
            }
        }
        catch (CryptographicException e)
        {
            error = $"is not a usable key ({e.Message})";
            return null;
        }
    }

    /// <summary>A key whose "alg" (when it names one) fits its type.</summary>
    private static JwtKey? Checked(JwtKey key, out string? error, string? curveAlgorithm = null)
    {
        error = null;
        if (key.Algorithm is { } alg && (JwtAlgorithms.TypeOf(alg) != key.Type || (curveAlgorithm is not null && alg != curveAlgorithm)))
        {
            error = $"\"alg\" \"{alg}\" does not fit a {key.Type} key{(curveAlgorithm is null ? "" : $" on its curve ({curveAlgorithm})")}";
            return null;
        }

        return key;
    }

    private static string? Text(JsonElement o, string name) =>
        o.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static byte[]? Bytes(JsonElement o, string name)
    {
        if (Text(o, name) is not { } text)
        {
            return null;
        }

        byte[] buffer = new byte[Base64Url.GetMaxDecodedLength(text.Length)];
        return Base64Url.TryDecodeFromChars(text, buffer, out int written) ? buffer[..written] : null;
    }
}

public enum JwtKeyType
{
    Rsa,
    Ec,
    Hmac,
}

/// <summary>One verification key: exactly one of <see cref="Rsa"/>, <see cref="Ecdsa"/>, <see cref="Secret"/> is set.</summary>
public sealed record JwtKey(string? Id, string? Algorithm, JwtKeyType Type, RSA? Rsa, ECDsa? Ecdsa, byte[]? Secret, int CurveBytes)
{
    /// <summary>
    /// Whether this key may verify <paramref name="alg"/>: its own type, its "alg" when it names one (an EC key
    /// always has its curve's), and for HMAC a key at least as long as the hash (RFC 7518 §3.2).
    /// </summary>
    public bool Allows(string alg, JwtKeyType type) =>
        type == Type && (Algorithm is null || Algorithm == alg)
        && (Type != JwtKeyType.Hmac || Secret!.Length >= (alg.EndsWith("512", StringComparison.Ordinal) ? 64 : alg.EndsWith("384", StringComparison.Ordinal) ? 48 : 32));
}

/// <summary>The JWS algorithms a JWT policy verifies (RFC 7518 §3.1), "none" never.</summary>
public static class JwtAlgorithms
{
    public static JwtKeyType? TypeOf(string alg) => alg switch
    {
        "RS256" or "RS384" or "RS512" or "PS256" or "PS384" or "PS512" => JwtKeyType.Rsa,
        "ES256" or "ES384" or "ES512" => JwtKeyType.Ec,
        "HS256" or "HS384" or "HS512" => JwtKeyType.Hmac,
        _ => null,
    };
}
