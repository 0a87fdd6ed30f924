using System.Net.Security;
using System.Security.Authentication;

namespace Appliance.Tls.Tests.Support;

/// <summary>What the server side saw of one connection.</summary>
internal sealed record ServerHandshake(
    string? ServerName,
    SslProtocols Protocol,
    SslApplicationProtocol ApplicationProtocol,
    Exception? Error)
{
    public bool Succeeded => Error is null;
}
