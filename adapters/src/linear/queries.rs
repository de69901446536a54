//! Every GraphQL document the Linear adapter sends, in one place so the contract test can
//! validate each against Linear's published schema.

/// The issue fields every tool returns. A macro, not a `const`, so `concat!` can splice it into
/// both fragments (`Issue` and `IssueSearchResult` are distinct types with the same fields).
macro_rules! issue_fields {
    () => {
        "id identifier title priority priorityLabel url createdAt updatedAt \
         state { id name type } team { id key name } assignee { id name displayName } \
         project { id name } labels(first: 20) { nodes { id name } }"
    };
}

macro_rules! page_info {
    () => {
        "pageInfo { hasNextPage endCursor }"
    };
}

pub const SEARCH_ISSUES: &str = concat!(
    "query SearchIssues($term: String!, $first: Int!, $after: String, $includeComments: Boolean) {\n",
    "  searchIssues(term: $term, first: $first, after: $after, includeComments: $includeComments) {\n",
    "    nodes { ...SearchHit }\n    ",
    page_info!(),
    "\n  }\n}\n",
    "fragment SearchHit on IssueSearchResult { ",
    issue_fields!(),
    " }\n"
);

pub const LIST_ISSUES: &str = concat!(
    "query ListIssues($first: Int!, $after: String, $filter: IssueFilter) {\n",
    "  issues(first: $first, after: $after, filter: $filter, orderBy: updatedAt) {\n",
    "    nodes { ...IssueSummary }\n    ",
    page_info!(),
    "\n  }\n}\n",
    "fragment IssueSummary on Issue { ",
    issue_fields!(),
    " }\n"
);

pub const GET_ISSUE: &str = concat!(
    "query GetIssue($id: String!, $commentsFirst: Int!) {\n",
    "  issue(id: $id) {\n    ...IssueSummary\n    description\n",
    "    comments(first: $commentsFirst) {\n",
    "      nodes { id body createdAt user { id name displayName } }\n      ",
    page_info!(),
    "\n    }\n  }\n}\n",
    "fragment IssueSummary on Issue { ",
    issue_fields!(),
    " }\n"
);

pub const CREATE_ISSUE: &str = concat!(
    "mutation CreateIssue($input: IssueCreateInput!) {\n",
    "  issueCreate(input: $input) { success issue { ...IssueSummary description } }\n}\n",
    "fragment IssueSummary on Issue { ",
    issue_fields!(),
    " }\n"
);

pub const UPDATE_ISSUE: &str = concat!(
    "mutation UpdateIssue($id: String!, $input: IssueUpdateInput!) {\n",
    "  issueUpdate(id: $id, input: $input) { success issue { ...IssueSummary description } }\n}\n",
    "fragment IssueSummary on Issue { ",
    issue_fields!(),
    " }\n"
);

pub const ADD_COMMENT: &str = "mutation AddComment($input: CommentCreateInput!) {
  commentCreate(input: $input) {
    success
    comment { id body createdAt url user { id name displayName } issue { id identifier } }
  }
}
";

pub const LIST_TEAMS: &str = concat!(
    "query ListTeams($first: Int!, $after: String) {\n",
    "  teams(first: $first, after: $after) {\n",
    "    nodes {\n      id key name description\n",
    "      labels(first: 50) { nodes { id name } }\n",
    "      members(first: 50) { nodes { id name displayName } }\n    }\n    ",
    page_info!(),
    "\n  }\n}\n"
);

pub const LIST_PROJECTS: &str = concat!(
    "query ListProjects($first: Int!, $after: String, $filter: ProjectFilter) {\n",
    "  projects(first: $first, after: $after, filter: $filter) {\n",
    "    nodes {\n      id name description url progress targetDate\n",
    "      status { name type }\n      teams(first: 20) { nodes { id key name } }\n    }\n    ",
    page_info!(),
    "\n  }\n}\n"
);

pub const LIST_WORKFLOW_STATES: &str = concat!(
    "query ListWorkflowStates($first: Int!, $after: String, $filter: WorkflowStateFilter) {\n",
    "  workflowStates(first: $first, after: $after, filter: $filter) {\n",
    "    nodes { id name type color position team { id key name } }\n    ",
    page_info!(),
    "\n  }\n}\n"
);

/// (operation name, document) of every operation the adapter can send.
pub const ALL: &[(&str, &str)] = &[
    ("SearchIssues", SEARCH_ISSUES),
    ("ListIssues", LIST_ISSUES),
    ("GetIssue", GET_ISSUE),
    ("CreateIssue", CREATE_ISSUE),
    ("UpdateIssue", UPDATE_ISSUE),
    ("AddComment", ADD_COMMENT),
    ("ListTeams", LIST_TEAMS),
    ("ListProjects", LIST_PROJECTS),
    ("ListWorkflowStates", LIST_WORKFLOW_STATES),
];
