using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Appliance.Tls.Acme;

namespace Appliance.Tls.Tests.Acme;

public sealed class JsonWebSignatureTests
{
    private static (JsonElement Header, string Payload, bool Verified) Open(byte[] jws, ECDsa key)
    {
        using JsonDocument doc = JsonDocument.Parse(jws);
        string p = doc.RootElement.GetProperty("protected").GetString()!;
        string payload = doc.RootElement.GetProperty("payload").GetString()!;
        byte[] signature = Base64Url.DecodeFromChars(doc.RootElement.GetProperty("signature").GetString()!);
        bool verified = key.VerifyData(Encoding.ASCII.GetBytes(p + "." + payload), signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        using JsonDocument header = JsonDocument.Parse(Base64Url.DecodeFromChars(p));
        return (header.RootElement.Clone(), payload, verified);
    }

    [Fact]
    public void New_account_requests_carry_the_key_and_later_ones_the_account_url()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var jws = new JsonWebSignature(key);

        (JsonElement header, string payload, bool verified) = Open(jws.Sign("https://a.test/new-acct", "n1", null, "{\"x\":1}"u8.ToArray()), key);
        Assert.True(verified);
        Assert.Equal("ES256", header.GetProperty("alg").GetString());
        Assert.Equal("n1", header.GetProperty("nonce").GetString());
        Assert.Equal("https://a.test/new-acct", header.GetProperty("url").GetString());
        Assert.Equal("EC", header.GetProperty("jwk").GetProperty("kty").GetString());
        Assert.False(header.TryGetProperty("kid", out _)); // RFC 8555 §6.2: jwk and kid are mutually exclusive
        Assert.Equal("{\"x\":1}", Encoding.UTF8.GetString(Base64Url.DecodeFromChars(payload)));

        (header, payload, verified) = Open(jws.Sign("https://a.test/order/1", "n2", "https://a.test/acct/7", null), key);
        Assert.True(verified);
        Assert.Equal("https://a.test/acct/7", header.GetProperty("kid").GetString());
        Assert.False(header.TryGetProperty("jwk", out _));
        Assert.Equal("", payload); // RFC 8555 §6.3: POST-as-GET has an empty payload
    }

    [Fact]
    public void Thumbprint_follows_rfc_7638()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var jws = new JsonWebSignature(key);
        ECParameters p = key.ExportParameters(false);
        string canonical = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" + Base64Url.EncodeToString(p.Q.X) + "\",\"y\":\"" + Base64Url.EncodeToString(p.Q.Y) + "\"}";
        Assert.Equal(Base64Url.EncodeToString(SHA256.HashData(Encoding.ASCII.GetBytes(canonical))), jws.Thumbprint);
        Assert.Equal(43, jws.Thumbprint.Length);
    }

    [Fact]
    public void Refuses_keys_that_are_not_p256()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        Assert.Throws<ArgumentException>(() => new JsonWebSignature(key));
    }

    [Fact]
    public void Key_authorization_joins_token_and_thumbprint()
    {
        Assert.Equal("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0.thumb", KeyAuthorization.Create("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", "thumb"));
        Assert.Throws<ArgumentException>(() => KeyAuthorization.Create("bad/token/with/slashes/in/it", "thumb"));
    }

    [Fact]
    public void Nonces_must_be_base64url_and_are_used_once()
    {
        var nonces = new ReplayNonces();
        nonces.Add("");
        nonces.Add("has space");
        nonces.Add("has\r\ninjection");
        nonces.Add("padded==");
        nonces.Add(new string('a', 300));
        Assert.Equal(0, nonces.Count);
        nonces.Add("good_nonce-1");
        Assert.True(nonces.TryTake(out string n));
        Assert.Equal("good_nonce-1", n);
        Assert.False(nonces.TryTake(out _));
        for (int i = 0; i < 100; i++)
        {
            nonces.Add($"n{i}");
        }

        Assert.Equal(16, nonces.Count); // bounded
    }
}
