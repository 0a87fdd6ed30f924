using System.IO.Pipelines;

namespace Appliance.Server;

/// <summary>
/// A request body as the gateway sees it, whatever the protocol: a pipe-like reader of body bytes only
/// (HTTP/1.1 framing or HTTP/2 DATA frames are already stripped). Bodies stream; nothing here buffers a
/// whole body.
/// </summary>
public abstract class RequestBody
{
    /// <summary>Declared length, or -1 when unknown (chunked, HTTP/2 without content-length).</summary>
    public abstract long Length { get; }

    /// <summary>True once every byte was read (the result with IsCompleted was seen).</summary>
    public abstract bool IsComplete { get; }

    public abstract ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default);

    public abstract void AdvanceTo(SequencePosition consumed, SequencePosition examined);

    public void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    /// <summary>Reads and discards the rest of the body.</summary>
    public async ValueTask DrainAsync(CancellationToken cancellationToken = default)
    {
        while (!IsComplete)
        {
            ReadResult r = await ReadAsync(cancellationToken).ConfigureAwait(false);
            AdvanceTo(r.Buffer.End);
            if (r.IsCompleted || r.IsCanceled)
            {
                return;
            }
        }
    }
}

/// <summary>The body of a request that has none.</summary>
public sealed class EmptyRequestBody : RequestBody
{
    public static readonly EmptyRequestBody Instance = new();

    public override long Length => 0;

    public override bool IsComplete => true;

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default) =>
        new(new ReadResult(default, isCanceled: false, isCompleted: true));

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
    }
}
