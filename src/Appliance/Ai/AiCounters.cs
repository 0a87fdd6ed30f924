using System.Collections.Concurrent;

namespace Appliance.Ai;

/// <summary>
/// What each model (by its name in the config) was asked and answered, for the metrics: attempts sent to its
/// provider, those that failed on the provider's side (and so fell back or failed the request), and the tokens
/// its answers cost. One instance lives across config applies, so the counters only ever grow.
/// </summary>
public sealed class AiCounters
{
    private readonly ConcurrentDictionary<string, ModelCounters> _models = new(StringComparer.Ordinal);

    public ModelCounters For(string model) => _models.GetOrAdd(model, static _ => new ModelCounters());

    /// <summary>Every model counted so far, by name.</summary>
    public IEnumerable<KeyValuePair<string, ModelCounters>> Models => _models.OrderBy(m => m.Key, StringComparer.Ordinal);
}

public sealed class ModelCounters
{
    private long _attempts;
    private long _providerFailures;
    private long _inputTokens;
    private long _outputTokens;
    private long _costNanos;

    public long Attempts => Volatile.Read(ref _attempts);

    public long ProviderFailures => Volatile.Read(ref _providerFailures);

    public long InputTokens => Volatile.Read(ref _inputTokens);

    public long OutputTokens => Volatile.Read(ref _outputTokens);

    /// <summary>What the answers cost (ai.models[].cost), in nano-units of the currency; 0 for a model without a price.</summary>
    public long CostNanos => Volatile.Read(ref _costNanos);

    public void Attempted() => Interlocked.Increment(ref _attempts);

    public void ProviderFailed() => Interlocked.Increment(ref _providerFailures);

    public void Used(long input, long output, long costNanos)
    {
        Interlocked.Add(ref _inputTokens, input);
        Interlocked.Add(ref _outputTokens, output);
        if (costNanos > 0)
        {
            Interlocked.Add(ref _costNanos, costNanos);
        }
    }
}
