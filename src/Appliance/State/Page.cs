namespace Appliance.State;

/// <summary>
/// One page of a list ordered by id. <see cref="Next"/> is the cursor for the following page (pass it as
/// <c>after</c>), null on the last page. Keyset paging: rows added or removed between calls never shift a page.
/// </summary>
public sealed record Page<T>(IReadOnlyList<T> Items, string? Next);
