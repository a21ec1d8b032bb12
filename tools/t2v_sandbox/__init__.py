"""Run template.yaml end to end on one machine (moto + emulator), and the t2v command.

    from t2v_sandbox.sandbox import Sandbox, SandboxConfig
    with Sandbox(SandboxConfig(template=Path("template.yaml"), time_scale=0.05)) as sb:
        sb.endpoints, sb.outputs, sb.physical_id("JobsTable"), sb.client("s3"), sb.session

Modules: template (load/package/translate SAM), intrinsics + deployer + provisioners (create the
CloudFormation resources in moto), lambda_runner + _lambda_worker (real handlers in warm processes),
patches (moto gaps: Lambda, S3 notifications, EventBridge targets, Step Functions time scale),
eventbridge (pattern matching, target input), apigateway (HTTP front), cli + commands_* (`t2v`).
"""
