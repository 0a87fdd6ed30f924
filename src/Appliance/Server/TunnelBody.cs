using System.IO.Pipelines;

namespace Appliance.Server;

/// <summary>
/// The client's side of an upgraded HTTP/1.1 connection (101 Switching Protocols): every byte after the request
/// head until the client closes, no framing. The connection's read-side timeouts are off while it runs; the handler
/// that tunnels sets its own idle timeout.
/// </summary>
internal sealed class TunnelBody(PipeReader input) : RequestBody
{
    private bool _complete;

    public override long Length => -1;

    public override bool IsComplete => _complete;

    public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        ReadResult result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
        _complete = result.IsCompleted;
        return result;
    }

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => input.AdvanceTo(consumed, examined);
}
