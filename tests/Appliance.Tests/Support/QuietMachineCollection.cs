namespace Appliance.Tests.Support;

/// <summary>
/// Tests whose outside tool races the server by design, so they run alone after the parallel ones. testssl's
/// resumption check closes stdin at once (<c>s_client &lt;/dev/null</c>) and reports "no resumption" if the TLS 1.3
/// ticket, sent after the client's Finished, arrives after s_client has quit; on a 2-core box busy with the other
/// test classes that happens. Resumption itself is checked without the race in the s_client tests.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class QuietMachineCollection
{
    public const string Name = "quiet machine";
}
