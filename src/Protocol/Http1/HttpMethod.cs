namespace Appliance.Protocol.Http1;

/// <summary>Request methods the engine recognises; any other well-formed token is <see cref="Custom"/> (RFC 9110 §9.1).</summary>
/// <remarks>Note: <c>System.Net.Http.HttpMethod</c> is in the implicit usings; alias this type where both are visible.</remarks>
public enum HttpMethod : byte
{
    Custom,
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Trace,
    Connect,
}

/// <summary>Byte-level conversions for <see cref="HttpMethod"/>.</summary>
public static class HttpMethods
{
    /// <summary>Maps a method token to its <see cref="HttpMethod"/>. Methods are case-sensitive (RFC 9110 §9.1):
    /// "get" is <see cref="HttpMethod.Custom"/>. The token itself is not validated here.</summary>
    public static HttpMethod FromBytes(ReadOnlySpan<byte> token)
    {
        // Literal comparisons of constant length compile to one or two integer compares.
        switch (token.Length)
        {
            case 3:
                if (token.SequenceEqual("GET"u8)) return HttpMethod.Get;
                if (token.SequenceEqual("PUT"u8)) return HttpMethod.Put;
                break;
            case 4:
                if (token.SequenceEqual("POST"u8)) return HttpMethod.Post;
                if (token.SequenceEqual("HEAD"u8)) return HttpMethod.Head;
                break;
            case 5:
                if (token.SequenceEqual("PATCH"u8)) return HttpMethod.Patch;
                if (token.SequenceEqual("TRACE"u8)) return HttpMethod.Trace;
                break;
            case 6:
                if (token.SequenceEqual("DELETE"u8)) return HttpMethod.Delete;
                break;
            case 7:
                if (token.SequenceEqual("OPTIONS"u8)) return HttpMethod.Options;
                if (token.SequenceEqual("CONNECT"u8)) return HttpMethod.Connect;
                break;
        }

        return HttpMethod.Custom;
    }

    /// <summary>The method token; empty for <see cref="HttpMethod.Custom"/> (use the token the request carried).</summary>
    public static ReadOnlySpan<byte> ToBytes(this HttpMethod method) => method switch
    {
        HttpMethod.Get => "GET"u8,
        HttpMethod.Head => "HEAD"u8,
        HttpMethod.Post => "POST"u8,
        HttpMethod.Put => "PUT"u8,
        HttpMethod.Delete => "DELETE"u8,
        HttpMethod.Options => "OPTIONS"u8,
        HttpMethod.Patch => "PATCH"u8,
        HttpMethod.Trace => "TRACE"u8,
        HttpMethod.Connect => "CONNECT"u8,
        _ => default,
    };
}
