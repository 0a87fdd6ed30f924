using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Appliance.Tls.Acme;

/// <summary>
/// Signs ACME requests (RFC 8555 §6.2): a JWS in flattened JSON serialization (RFC 7515 §7.2.2) with ES256
/// (RFC 7518 §3.4: ECDSA P-256 with SHA-256, the signature as the 64 bytes r || s). The protected header carries
/// the nonce, the URL, and either the account's public key (<c>jwk</c>, for newAccount) or its URL (<c>kid</c>).
/// </summary>
public sealed class JsonWebSignature
{
    private readonly ECDsa _key;

    public JsonWebSignature(ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(key);
        ECParameters p = key.ExportParameters(includePrivateParameters: false);
        if (p.Curve.Oid?.Value != "1.2.840.10045.3.1.7" || p.Q.X is not { Length: 32 } || p.Q.Y is not { Length: 32 })
        {
            throw new ArgumentException("the account key must be ECDSA P-256 (ES256)", nameof(key));
        }

        _key = key;
        Key = new Jwk { Crv = "P-256", Kty = "EC", X = Base64Url.EncodeToString(p.Q.X), Y = Base64Url.EncodeToString(p.Q.Y) };
        // RFC 7638 §3.2: the required members in lexicographic order, no whitespace; §3.3 for EC keys: crv, kty, x, y.
        string canonical = $$"""{"crv":"P-256","kty":"EC","x":"{{Key.X}}","y":"{{Key.Y}}"}""";
        Thumbprint = Base64Url.EncodeToString(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
    }

    /// <summary>The public key as a JWK (RFC 7517).</summary>
    public Jwk Key { get; }

    /// <summary>RFC 7638 JWK thumbprint (SHA-256, base64url): the account's part of every key authorization.</summary>
    public string Thumbprint { get; }

    /// <summary>
    /// The request body for <paramref name="url"/>. <paramref name="payload"/> null is POST-as-GET (RFC 8555 §6.3:
    /// the payload is the empty string); <paramref name="keyId"/> null sends the public key instead of the account URL.
    /// </summary>
    public byte[] Sign(string url, string nonce, string? keyId, byte[]? payload)
    {
        var header = new JwsHeader { Alg = "ES256", Nonce = nonce, Url = url, Kid = keyId, Jwk = keyId is null ? Key : null };
        string protectedPart = Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(header, AcmeJsonContext.Default.JwsHeader));
        string payloadPart = payload is null ? "" : Base64Url.EncodeToString(payload);
        byte[] signature = _key.SignData(Encoding.ASCII.GetBytes(protectedPart + "." + payloadPart), HashAlgorithmName.SHA256,
            DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        var message = new JwsMessage { Protected = protectedPart, Payload = payloadPart, Signature = Base64Url.EncodeToString(signature) };
        return JsonSerializer.SerializeToUtf8Bytes(message, AcmeJsonContext.Default.JwsMessage);
    }
}

/// <summary>RFC 7517 JSON Web Key, EC public key members only.</summary>
public sealed class Jwk
{
    public string? Crv { get; set; }
    public string? Kty { get; set; }
    public string? X { get; set; }
    public string? Y { get; set; }
}

/// <summary>RFC 8555 §6.2: the protected header of an ACME request.</summary>
public sealed class JwsHeader
{
    public string? Alg { get; set; }
    public Jwk? Jwk { get; set; }
    public string? Kid { get; set; }
    public string? Nonce { get; set; }
    public string? Url { get; set; }
}

/// <summary>RFC 7515 §7.2.2 flattened JSON serialization.</summary>
public sealed class JwsMessage
{
    public string? Protected { get; set; }
    public string? Payload { get; set; }
    public string? Signature { get; set; }
}
