using System.Buffers;
using System.Security.Cryptography;

namespace Appliance.Ai;

/// <summary>
/// Ids the gateway makes up: <c>call_</c> and 24 random hex digits for a tool call a provider gave none to (Gemini),
/// optionally followed by '.' and the call's thought signature so that it comes back with the conversation;
/// <c>chatcmpl-</c> and 24 hex digits for an answer.
/// </summary>
internal static class CallIds
{
    /// <summary>The length of an id without a signature.</summary>
    public const int Length = 5 + 24;

    /// <summary>Writes a fresh tool call id into the first <see cref="Length"/> bytes.</summary>
    public static void Write(Span<byte> into)
    {
        "call_"u8.CopyTo(into);
        Hex(into.Slice(5, 24));
    }

    /// <summary>A fresh tool call id carrying <paramref name="signature"/> when it is base64.</summary>
    public static string New(string? signature)
    {
        Span<byte> id = stackalloc byte[Length];
        Write(id);
        string text = System.Text.Encoding.ASCII.GetString(id);
        return signature is { Length: > 0 } && IsSignature(signature) ? text + "." + signature : text;
    }

    /// <summary>The thought signature a tool call id of ours carries, or null.</summary>
    public static string? SignatureOf(string id)
    {
        int dot = id.IndexOf('.', StringComparison.Ordinal);
        return id.StartsWith("call_", StringComparison.Ordinal) && dot == Length && dot + 1 < id.Length ? id[(dot + 1)..] : null;
    }

    /// <summary>
    /// The id without its signature, for providers other than Gemini: OpenAI takes ids of at most 40 characters and
    /// Anthropic only letters, digits, '_' and '-'. The same id always gives the same result, so calls and their
    /// results still pair up.
    /// </summary>
    public static string Unsigned(string id) => SignatureOf(id) is null ? id : id[..Length];

    /// <summary>A fresh answer id: chatcmpl- and 24 hex digits.</summary>
    public static byte[] NewCompletionId()
    {
        byte[] id = new byte[9 + 24];
        "chatcmpl-"u8.CopyTo(id);
        Hex(id.AsSpan(9));
        return id;
    }

    /// <summary>What a thought signature (base64) may hold to ride in an id.</summary>
    public static readonly SearchValues<byte> SignatureBytes =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_"u8);

    private static bool IsSignature(string text) => text.All(c => c < 128 && SignatureBytes.Contains((byte)c));

    /// <summary>Random lower-case hex digits filling <paramref name="into"/> (an even length).</summary>
    private static void Hex(Span<byte> into)
    {
        Span<byte> random = stackalloc byte[into.Length / 2];
        RandomNumberGenerator.Fill(random);
        for (int i = 0; i < random.Length; i++)
        {
            into[2 * i] = (byte)"0123456789abcdef"[random[i] >> 4];
            into[(2 * i) + 1] = (byte)"0123456789abcdef"[random[i] & 0xF];
        }
    }
}
