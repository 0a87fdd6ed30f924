using Appliance.Protocol.Http1;

namespace Appliance.Server;

/// <summary>Thrown off the hot path (body reads) when the client broke the protocol; the connection answers and closes.</summary>
public sealed class BadRequestException(RequestRejection rejection, int? statusOverride = null)
    : Exception(rejection.Reason())
{
    public RequestRejection Rejection { get; } = rejection;

    public int StatusCode { get; } = statusOverride ?? rejection.StatusCode();
}
